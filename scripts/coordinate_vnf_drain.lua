-- CoordinateVNF script that drains a VNFC over SSH once its element manager (EM) agrees.
-- It first asks the EM, through the ETSI NFV-SOL 002 LCM Coordination API, whether the LCM
-- operation may go on for this VNFC (as coordinate_vnf.lua does); on CONTINUE it logs in to
-- the VNFC at ssh_ip with the username and password of the VNFC parameters, runs a drain
-- command, then a health check, retried a few times. Exit status 0 lets the operation go
-- on; anything else fails it, with the reason as one line on stderr.
--
-- Run it as the VNFM does:   lcmcoord run coordinate_vnf_drain.lua < vnfc_param.json
--
-- Besides what the VNFM always passes (ssh_ip, username, password, endpoint,
-- authentication, timeout, LcmCoordRequest), it reads these settings, which the operator
-- puts in new_vnfc_param / old_vnfc_param next to username and password. Each may also be
-- given inside inputParams (which also goes to the EM: harmless for these values, as a
-- host key fingerprint is public, but the top level keeps the EM's input clean).
--
--   ssh_host_key_sha256  the VNFC's host key fingerprint, as `ssh-keygen -lf` prints it
--                        ("SHA256:..."). Either this or ssh_known_hosts is required: the
--                        script never sends the password to a host it cannot verify.
--   ssh_known_hosts      path of an OpenSSH known_hosts file listing the VNFC.
--   ssh_port             default 22.
--   ssh_drain_command    default "/usr/local/bin/vnfc-drain" (change it for your VNF).
--   ssh_health_command   default "/usr/local/bin/vnfc-health"; exit status 0 = healthy.
--   ssh_health_attempts  how many times the health check runs before giving up; default 5.
--   ssh_health_interval  seconds between two health checks; default 3.
--   ssh_timeout          seconds for connecting and for each command; default 60.
local lcmcoord = require "lcmcoord"

-- The VNFC parameters, decoded from the JSON on stdin.
local p = ...

-- A setting from the top level of the VNFC parameters, else from inputParams, else nil.
-- JSON null counts as absent.
local function setting(name)
  local value = p[name]
  if value == nil or value == lcmcoord.null then
    local input = p.inputParams
    value = type(input) == "table" and input[name] or nil
  end
  if value == lcmcoord.null then
    return nil
  end
  return value
end

-- Stops the script with one line on stderr, which the VNFM keeps as the reason.
local function fail(fmt, ...)
  error(string.format(fmt, ...), 0)
end

-- The first line of a command's output, for messages.
local function first_line(text)
  return (text or ""):match("[^\r\n]*")
end

---------------------------------------------------------------------------------------------
-- 1. Ask the EM, exactly as coordinate_vnf.lua does.

local req = p.LcmCoordRequest
if type(req) ~= "table" then
  fail("the VNFC parameters have no LcmCoordRequest object")
end
-- The coordination action your VNFD declares for draining; change it to yours.
req.coordinationActionName = "prv.tacker_organization.coordination_test"
if p.inputParams ~= nil and p.inputParams ~= lcmcoord.null then
  req.inputParams = p.inputParams
end
-- Raises (and so fails the operation) when the EM cannot be reached in time, refuses the
-- request, or answers something that breaks the protocol.
local coord = lcmcoord.create_coordination(p.endpoint, p.authentication, req, p.timeout)
if coord.coordinationResult ~= "CONTINUE" then
  local reason = type(coord.error) == "table" and (coord.error.detail or coord.error.title)
  if type(reason) == "string" and reason ~= "" then
    fail("coordination %s: %s", coord.coordinationResult, reason)
  end
  fail("coordination %s", tostring(coord.coordinationResult))
end

---------------------------------------------------------------------------------------------
-- 2. Log in to the VNFC.

local host_key = setting("ssh_host_key_sha256")
local known_hosts = setting("ssh_known_hosts")
if host_key == nil and known_hosts == nil then
  fail("set ssh_host_key_sha256 (or ssh_known_hosts) in the VNFC parameters: the VNFC's " ..
       "host key must be verified before its password is sent")
end
local timeout = tonumber(setting("ssh_timeout")) or 60

-- connect returns nil, err when the VNFC cannot be reached, its host key is not the
-- expected one, or it refuses the password; assert turns that into the script's failure,
-- with a message that names the host (never the password).
local session <close> = assert(lcmcoord.ssh.connect{
  host = p.ssh_ip,
  port = math.tointeger(setting("ssh_port")) or 22,
  user = p.username,
  password = p.password,
  host_key_sha256 = host_key,
  known_hosts = host_key == nil and known_hosts or nil,
  timeout = timeout,
})
lcmcoord.log.info("logged in to %s", tostring(session))

---------------------------------------------------------------------------------------------
-- 3. Drain: the command must exit 0.

local drain = setting("ssh_drain_command") or "/usr/local/bin/vnfc-drain"
-- exec returns {status, stdout, stderr} when the command ran (whatever its exit status),
-- or nil, err when it could not run or did not finish within the timeout.
local r = assert(session:exec(drain, timeout))
if r.status ~= 0 then
  fail("drain command on %s exited %d: %s", p.ssh_ip, r.status, first_line(r.stderr))
end
lcmcoord.log.info("drained: %s", first_line(r.stdout))

---------------------------------------------------------------------------------------------
-- 4. Health check, a few attempts: a VNFC often needs a moment to settle after a drain.

local health = setting("ssh_health_command") or "/usr/local/bin/vnfc-health"
local attempts = math.tointeger(setting("ssh_health_attempts")) or 5
local interval = tonumber(setting("ssh_health_interval")) or 3
for attempt = 1, attempts do
  r = assert(session:exec(health, timeout))
  if r.status == 0 then
    lcmcoord.log.info("healthy after %d attempt(s): %s", attempt, first_line(r.stdout))
    return -- exit status 0: the LCM operation goes on
  end
  lcmcoord.log.warn("health check %d/%d on %s exited %d: %s", attempt, attempts, p.ssh_ip,
                    r.status, first_line(r.stderr))
  if attempt < attempts then
    -- sleep returns nil, err when lcmcoord run is interrupted (SIGTERM): stop at once.
    assert(lcmcoord.sleep(interval))
  end
end
fail("VNFC %s still unhealthy after %d health checks (last exit status %d): %s", p.ssh_ip,
     attempts, r.status, first_line(r.stderr))
