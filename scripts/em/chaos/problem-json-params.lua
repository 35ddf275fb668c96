-- 409 ProblemDetails as application/problem+json; charset=utf-8; foo=bar
-- Media type parameters, even unknown ones, must not stop a client from reading the error.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    return 409, { ["Content-Type"] = "application/problem+json; charset=utf-8; foo=bar" },
      em.problem(409, "VNFC VDU1-chaos is still draining")
  end
end
