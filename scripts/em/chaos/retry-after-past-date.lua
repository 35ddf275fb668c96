-- 503 with Retry-After an HTTP-date one day in the past, then 201
-- A date already gone means "now": the client waits its floor, not zero, not forever.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" and req.posts == 1 then
    return 503, { ["Retry-After"] = em.http_date(-86400) }, em.problem(503, "EM busy (chaos)")
  end
end
