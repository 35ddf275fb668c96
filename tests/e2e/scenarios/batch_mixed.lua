-- EM scenario for test_batch.py: decides each POST /coordinations by its
-- coordinationActionName, so that one batch gets every kind of outcome.
--   "*.abort"    -> 201 with an LcmCoord whose result is ABORT (and a ProblemDetails error)
--   "*.conflict" -> 409 application/problem+json naming the action
--   anything else falls through to the simulator's defaults (201 CONTINUE in sync mode).
return function(req)
  if req.method ~= "POST" or req.path ~= "/lcmcoord/v1/coordinations" or type(req.json) ~= "table" then
    return
  end
  local name = req.json.coordinationActionName
  if type(name) ~= "string" then
    return
  end
  if name:match("%.abort$") then
    local coord = em.lcmcoord(req.json, "ABORT")
    coord.error = em.problem(409, "VNFC of " .. name .. " is not ready")
    return 201, {Location = coord._links.self.href}, coord
  elseif name:match("%.conflict$") then
    return 409, nil, em.problem(409, "conflict for " .. name .. ": VNFC still draining")
  end
end
