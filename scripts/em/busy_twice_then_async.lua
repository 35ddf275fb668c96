-- The EM is busy for the first two POSTs (503 with Retry-After: 1) and then accepts the
-- coordination asynchronously: 202 + Location, two GETs answered 202, then 200 CONTINUE.
-- A client must resend the same request after each 503, then poll the Location.
-- Run: lcmcoord em --scenario scripts/em/busy_twice_then_async.lua
return function(req)
  if req.method ~= "POST" or req.path ~= "/lcmcoord/v1/coordinations" or not req.json then
    return
  end
  if req.posts <= 2 then
    return 503, { ["Retry-After"] = "1" },
        em.problem(503, "EM busy with another coordination (" .. req.posts .. " of 2)")
  end
  return em.accept(req.json, { polls = 2, result = "CONTINUE" })
end
