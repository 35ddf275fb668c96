-- 201 LcmCoord whose coordinationResult is PROCEED_WITH_CAUTION
-- Only CONTINUE lets an operation go on; an unknown value must not be read as consent.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" and req.json then
    local coord = em.lcmcoord(req.json)
    coord.coordinationResult = "PROCEED_WITH_CAUTION"
    return 201, nil, coord
  end
end
