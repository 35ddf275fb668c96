-- 503 with Retry-After: -5, then 201
-- Not a delay-seconds value (RFC 9110 §10.2.3): the client must neither hot-loop nor wait
-- forever; the second POST is answered normally.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" and req.posts == 1 then
    return 503, { ["Retry-After"] = "-5" }, em.problem(503, "EM busy (chaos)")
  end
end
