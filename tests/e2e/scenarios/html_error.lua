-- EM scenario for the client suites: a proxy in front of the EM answers every POST
-- /coordinations with 502 and an HTML page instead of a ProblemDetails.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    return 502, {["Content-Type"] = "text/html"},
      "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
  end
end
