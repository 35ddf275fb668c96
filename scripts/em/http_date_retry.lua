-- The first POST gets 503 with Retry-After as an HTTP-date two seconds ahead (the other
-- form RFC 9110 allows, which clients tend to forget); later POSTs fall through to the
-- command-line behaviour (by default 201 CONTINUE).
-- Run: lcmcoord em --scenario scripts/em/http_date_retry.lua
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" and req.posts == 1 then
    return 503, { ["Retry-After"] = em.http_date(2) },
        em.problem(503, "EM in a maintenance window; retry at the given date")
  end
end
