-- Hooks for `lcmcoord serve`: check a VNFC's health over SSH before it may be replaced: a
-- command run on the VNFC must succeed (docs/serve.md, "Hook examples"). The VNFC's address
-- comes from inputParams.ssh_ip (as the CoordinateVNF parameters carry it).
--
-- Settings (environment of the serve process): LCMCOORD_HEALTH_USER, LCMCOORD_HEALTH_KEY (a
-- private key file), LCMCOORD_HEALTH_KNOWN_HOSTS (an OpenSSH known_hosts file: host keys are
-- always checked), LCMCOORD_HEALTH_PORT (default 22), LCMCOORD_HEALTH_COMMAND (default
-- "systemctl is-active --quiet app"), LCMCOORD_HEALTH_TIMEOUT (seconds, default 20).
local lcmcoord = require "lcmcoord"

local USER = assert(os.getenv("LCMCOORD_HEALTH_USER"), "set LCMCOORD_HEALTH_USER")
local KEY = assert(os.getenv("LCMCOORD_HEALTH_KEY"), "set LCMCOORD_HEALTH_KEY")
local KNOWN_HOSTS = assert(os.getenv("LCMCOORD_HEALTH_KNOWN_HOSTS"),
                           "set LCMCOORD_HEALTH_KNOWN_HOSTS")
local PORT = tonumber(os.getenv("LCMCOORD_HEALTH_PORT") or "22")
local COMMAND = os.getenv("LCMCOORD_HEALTH_COMMAND") or "systemctl is-active --quiet app"
local TIMEOUT = tonumber(os.getenv("LCMCOORD_HEALTH_TIMEOUT") or "20")

local function abort(detail)
  return {result = "ABORT", error = {title = "The VNFC is not healthy", detail = detail}}
end

return {
  decide = function(req, ctx)
    local host = (req.inputParams or {}).ssh_ip
    if type(host) ~= "string" then
      return abort("inputParams.ssh_ip is missing: no VNFC to check")
    end
    local s, err = lcmcoord.ssh.connect{host = host, port = PORT, user = USER, key = KEY,
                                        known_hosts = KNOWN_HOSTS, timeout = TIMEOUT}
    if not s then return abort(("cannot reach %s over SSH: %s"):format(host, tostring(err))) end
    local r, xerr = s:exec(COMMAND, TIMEOUT)
    s:close()
    if not r then return abort(("the health check on %s failed: %s"):format(host, tostring(xerr))) end
    if r.status ~= 0 then
      return abort(("the health check on %s exited %d"):format(host, r.status))
    end
    ctx.log(host .. " is healthy")
    return {result = "CONTINUE"}
  end,
}
