-- EM scenario for the client suites: POST /coordinations answers 201 with a JSON body cut
-- off in the middle, as a crashing producer would send it.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    return 201, {["Content-Type"] = "application/json"},
      '{"id": "7f3e", "coordinationResult": "CONT'
  end
end
