-- every POST gets 503 with Retry-After: 864000 (ten days)
-- A wait that cannot end before the deadline: fail now rather than sleep through it.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    return 503, { ["Retry-After"] = "864000" }, em.problem(503, "EM busy for ten days")
  end
end
