-- every POST gets 503 with Retry-After: 1, forever
-- An EM that is never ready: the client must give up at its deadline.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    return 503, { ["Retry-After"] = "1" }, em.problem(503, "EM busy, forever")
  end
end
