-- 201 LcmCoord without coordinationResult
-- The one attribute the client acts on is missing.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" and req.json then
    local coord = em.lcmcoord(req.json)
    coord.coordinationResult = nil
    return 201, nil, coord
  end
end
