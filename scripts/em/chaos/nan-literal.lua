-- 201 LcmCoord with a bare NaN in outputParams (not JSON)
-- JavaScript-ish serializers emit NaN; JSON has no such literal.
local body = '{"id":"nan-0001","coordinationResult":"CONTINUE","outputParams":{"load":NaN}}'
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    return 201, { ["Content-Type"] = "application/json" }, body
  end
end
