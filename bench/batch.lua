-- Benchmark driver run by bench/run.sh under `lcmcoord run`: N coordinations through one
-- client:coordinate_all in this process. Parameters come as JSON on stdin:
--   {endpoint, n, authentication?, timeout?, wait_floor?, default_interval?,
--    max_connections?, em_pid?, check_names?, plain_requests?}
-- A result counts as "ok" when it is CONTINUE and, unless check_names is false, carries the
-- coordinationActionName of the request at the same position (results are in input order).
-- Prints one JSON line on stdout: counts by outcome, the wall time and this process's CPU
-- seconds spent inside coordinate_all (os.clock), and, when em_pid is given, the EM's CPU
-- ticks (utime+stime from /proc/PID/stat) read right before and right after the call, so
-- both sides are measured over the same interval.
local lcmcoord = require "lcmcoord"
local p = ...

local function proc_ticks(pid)
  if not pid then return nil end
  local f = io.open("/proc/" .. math.tointeger(pid) .. "/stat")
  if not f then return nil end
  local line = f:read("l")
  f:close()
  -- Fields after the ")" that closes the command name: state is field 3, utime 14, stime 15.
  local rest = line:match("%) (.*)$")
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  return tonumber(fields[12]) + tonumber(fields[13])
end

local function self_status(key)
  local f = io.open("/proc/self/status")
  if not f then return nil end
  for line in f:lines() do
    local v = line:match("^" .. key .. ":%s+(%d+)")
    if v then f:close(); return tonumber(v) end
  end
  f:close()
end

local n = math.tointeger(p.n)
local opts = {endpoint = p.endpoint, timeout = p.timeout or 600}
if p.authentication then opts.authentication = p.authentication end
if p.wait_floor then opts.wait_floor = p.wait_floor end
if p.default_interval then opts.default_interval = p.default_interval end
local c <close> = lcmcoord.client(opts)

-- The requests: lcmcoord.request (random UUIDs from /dev/urandom), or with plain_requests
-- the same shape built here with fixed ids, which keeps request building out of a profile.
local reqs = {}
for i = 1, n do
  local action = string.format("prv.bench.action_%d", i)
  if p.plain_requests then
    local vnfm = "http://vnfm.example:9890/vnflcm/v2/"
    reqs[i] = {vnfInstanceId = "9b3f2a86-6c1d-4b4e-9d0a-3c2f5e7a1b20",
               vnfLcmOpOccId = "c2a7e4d1-0b5f-4e8a-a1c3-7f6d9e2b4a01",
               lcmOperationType = "CHANGE_VNFPKG", coordinationActionName = action,
               inputParams = {vnfcInstanceId = {"VDU1-" .. i}},
               _links = {
                 vnfLcmOpOcc = {href = vnfm .. "vnf_lcm_op_occs/c2a7e4d1-0b5f-4e8a-a1c3-7f6d9e2b4a01"},
                 vnfInstance = {href = vnfm .. "vnf_instances/9b3f2a86-6c1d-4b4e-9d0a-3c2f5e7a1b20"}}}
  else
    reqs[i] = lcmcoord.request{action = action, input = {vnfcInstanceId = {"VDU1-" .. i}}}
  end
end
local batch_opts = {timeout = p.timeout or 600}
if p.max_connections then batch_opts.max_connections = math.tointeger(p.max_connections) end

local em0 = proc_ticks(p.em_pid)
local cpu0, t0 = os.clock(), lcmcoord.now()
local results = c:coordinate_all(reqs, batch_opts)
local t1, cpu1 = lcmcoord.now(), os.clock()
local em1 = proc_ticks(p.em_pid)

local counts, first_err = {continue = 0, other = 0, err = 0}, nil
for i, r in ipairs(results) do
  if r.coord then
    if r.coord.coordinationResult == "CONTINUE" and (p.check_names == false
        or r.coord.coordinationActionName == reqs[i].coordinationActionName) then
      counts.continue = counts.continue + 1
    else
      counts.other = counts.other + 1
    end
  else
    counts.err = counts.err + 1
    first_err = first_err or tostring(r.err)
  end
end

io.write(lcmcoord.json.encode{
  n = n, ok = counts.continue, other = counts.other, errors = counts.err,
  first_error = first_err or lcmcoord.null,
  wall = t1 - t0, cpu = cpu1 - cpu0,
  em_ticks = (em0 and em1) and (em1 - em0) or lcmcoord.null,
  vmhwm_kb = self_status("VmHWM") or lcmcoord.null,
}, "\n")
if counts.continue ~= n then os.exit(1) end
