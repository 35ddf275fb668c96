-- Hooks for `lcmcoord serve`: drain each VNFC from a load balancer over HTTP before it is
-- replaced, and wait until its connections are gone (docs/serve.md, "Hook examples").
--
-- The load balancer's API assumed here (adapt the two calls to yours):
--   POST {LB}/members/{vnfc}/drain   -> 2xx: the member takes no new connections
--   GET  {LB}/members/{vnfc}         -> {"connections": N}
-- Settings (environment of the serve process): LCMCOORD_LB_URL (the API's base URL),
-- LCMCOORD_LB_DRAIN_TIMEOUT (seconds to wait for the connections to end, default 300),
-- LCMCOORD_LB_TOKEN_FILE (a file holding a Bearer token for the API; optional).
local lcmcoord = require "lcmcoord"

local LB = assert(os.getenv("LCMCOORD_LB_URL"), "set LCMCOORD_LB_URL to the load balancer's API")
local DRAIN_TIMEOUT = tonumber(os.getenv("LCMCOORD_LB_DRAIN_TIMEOUT") or "300")
local headers = {}
local token_file = os.getenv("LCMCOORD_LB_TOKEN_FILE")
if token_file then
  local f = assert(io.open(token_file))
  headers.Authorization = "Bearer " .. f:read("l")
  f:close()
end

-- inputParams.vnfcInstanceId: one VNFC id or a list of them.
local function vnfcs_of(req)
  local v = (req.inputParams or {}).vnfcInstanceId
  if type(v) == "string" then return {v} end
  return v or {}
end

local function abort(detail)
  return {result = "ABORT", error = {title = "The VNFC could not be drained", detail = detail}}
end

local function drain(vnfc, ctx)
  local url = LB .. "/members/" .. vnfc
  local r, err = lcmcoord.http.request{method = "POST", url = url .. "/drain",
                                       headers = headers, timeout = 10}
  if not r then return "the load balancer did not answer the drain of " .. vnfc .. ": " .. tostring(err) end
  if r.status < 200 or r.status > 299 then
    return ("the load balancer answered %d to the drain of %s"):format(r.status, vnfc)
  end
  local deadline = lcmcoord.now() + DRAIN_TIMEOUT
  while true do
    local s = lcmcoord.http.request{url = url, headers = headers, timeout = 10}
    local left = s and s.status == 200 and s.json and s.json.connections
    if left == 0 then
      ctx.log(vnfc .. " drained")
      return nil
    end
    if ctx:cancelled() then return "cancelled while draining " .. vnfc end
    if lcmcoord.now() >= deadline then
      return ("%s still has %s connections after %d s"):format(vnfc, tostring(left), DRAIN_TIMEOUT)
    end
    lcmcoord.sleep(1)
  end
end

return {
  decide = function(req, ctx)
    for _, vnfc in ipairs(vnfcs_of(req)) do
      local problem = drain(vnfc, ctx)
      if problem then return abort(problem) end
    end
    return {result = "CONTINUE"}
  end,
}
