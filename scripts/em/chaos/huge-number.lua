-- 201 LcmCoord with the number 1e999 in outputParams (beyond any double)
-- Valid JSON grammar, but no IEEE double holds it (RFC 8259 §6 lets parsers refuse it).
local body = '{"id":"big-0001","coordinationResult":"CONTINUE","outputParams":{"load":1e999}}'
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    return 201, { ["Content-Type"] = "application/json" }, body
  end
end
