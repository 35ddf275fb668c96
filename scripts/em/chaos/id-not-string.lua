-- 201 LcmCoord whose id is the number 42
-- An Identifier is a string; a client that records ids must not take a number (or crash).
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" and req.json then
    local coord = em.lcmcoord(req.json)
    coord.id = 42
    return 201, nil, coord
  end
end
