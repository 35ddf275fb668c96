-- 202 + Location, then every poll answers 202 (Retry-After: 1), forever
-- The coordination never finishes: the client must stop at its deadline (and cancel).
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" and req.json then
    return em.accept(req.json, { polls = 1000000 })
  end
end
