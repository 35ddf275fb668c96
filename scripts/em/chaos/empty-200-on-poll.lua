-- 202 + Location, then the poll answers 200 with an empty body
-- "Finished" without the LcmCoord: no result to act on.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" and req.json then
    return em.accept(req.json, { polls = 0 })
  end
  if req.method == "GET" and req.path:find("^/lcmcoord/v1/coordinations/") then
    return 200, { ["Content-Type"] = "application/json" }, nil
  end
end
