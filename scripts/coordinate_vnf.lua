-- CoordinateVNF script for a VNF package: asks the VNF's element manager (EM) whether the
-- LCM operation may go on for one VNFC, through the ETSI NFV-SOL 002 LCM Coordination API.
-- It is the Lua counterpart of Tacker's sample coordinate_vnf.py and keeps its contract:
-- exit status 0 lets the operation continue; anything else fails it, with the reason as
-- one line on stderr.
--
-- Run it as the VNFM does:   lcmcoord run coordinate_vnf.lua < vnfc_param.json
-- or from any Lua 5.4 that has the module, passing the decoded table as the argument:
--   lua5.4 -e 'assert(loadfile "coordinate_vnf.lua")(require "lcmcoord".json.decode(io.read "a"))' \
--     < vnfc_param.json
local lcmcoord = require "lcmcoord"

-- The VNFC parameters (the operator's new_vnfc_param/old_vnfc_param plus what the VNFM
-- adds, such as LcmCoordRequest), decoded from the JSON on stdin.
local p = ...

-- The VNFM leaves the action name to the script: it is one of the coordination actions
-- the VNFD declares. Change it to the action your VNFD defines.
local req = p.LcmCoordRequest
if type(req) ~= "table" then
  error("the VNFC parameters have no LcmCoordRequest object")
end
req.coordinationActionName = "prv.tacker_organization.coordination_test"
-- The operator's inputParams (if any) go to the EM as they are.
if p.inputParams ~= nil and p.inputParams ~= lcmcoord.null then
  req.inputParams = p.inputParams
end

-- Raises (and so fails the operation) when the EM cannot be reached in time, refuses the
-- request, or answers something that breaks the protocol.
local coord = lcmcoord.create_coordination(p.endpoint, p.authentication, req, p.timeout)

if coord.coordinationResult ~= "CONTINUE" then
  -- ABORT normally carries the EM's reason as a ProblemDetails.
  local reason = type(coord.error) == "table" and (coord.error.detail or coord.error.title)
  if type(reason) == "string" and reason ~= "" then
    error(string.format("coordination %s: %s", coord.coordinationResult, reason), 0)
  end
  error(string.format("coordination %s", tostring(coord.coordinationResult)), 0)
end
