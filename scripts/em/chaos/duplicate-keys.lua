-- 201 LcmCoord with coordinationResult twice: ABORT, then CONTINUE
-- Parsers disagree on which duplicate wins; on the question "may the operation go on" the
-- only safe reading is none at all.
local body = [[{"id":"dup-0001","coordinationResult":"ABORT","vnfInstanceId":"vi",]]
  .. [["vnfLcmOpOccId":"op","lcmOperationType":"CHANGE_VNFPKG",]]
  .. [["coordinationActionName":"prv.chaos","coordinationResult":"CONTINUE"}]]
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    return 201, { ["Content-Type"] = "application/json" }, body
  end
end
