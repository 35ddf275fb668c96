-- Specs of the `lcmcoord` module against a real `lcmcoord em`: the response tables of the
-- single requests, coordinations through :coordinate and create_coordination (results,
-- errors with ProblemDetails, authentication, deadlines), and the record. Each describe
-- starts its own EM with the options it needs and stops it in its teardown.
local lcmcoord = require "lcmcoord"

local BIN = assert(os.getenv("LCMCOORD_BIN"), "LCMCOORD_BIN is not set")
local SOURCE = os.getenv("LCMCOORD_SOURCE_DIR") or "../.."
local SCENARIOS = SOURCE .. "/tests/e2e/scenarios/"
local COORDINATIONS = "/lcmcoord/v1/coordinations"
-- Wall-clock upper bounds stretch with the suite's slow-machine factor, as in harness.py.
local TIME_FACTOR = tonumber(os.getenv("LCMCOORD_TIME_FACTOR") or "") or 1

local function shell_quote(s)
  return "'" .. (s:gsub("'", "'\\''")) .. "'"
end

-- Starts `lcmcoord em` on a free loopback port. The shell prints its own PID and then
-- execs the EM, so that PID is the EM's: stop() signals it and reaps it through the pipe.
local function start_em(...)
  local args = {}
  for i, a in ipairs{...} do args[i] = shell_quote(a) end
  local pipe = assert(io.popen("echo $$; exec " .. shell_quote(BIN) ..
    " em --listen 127.0.0.1:0 --quiet " .. table.concat(args, " ") .. " 2>/dev/null", "r"))
  local pid = assert(pipe:read("l"), "no PID from the shell")
  local line = pipe:read("l")
  local url = line and line:match("^listening on (http://%S+)$")
  local em = {url = url}
  function em.stop()
    if pid then
      os.execute("kill " .. pid .. " 2>/dev/null")
      pipe:close()
      pid = nil
    end
  end
  if not url then
    em.stop()
    error("lcmcoord em did not start: " .. tostring(line))
  end
  return em
end

local function journal(client, em)
  local r = assert(client:get(em.url .. "/_em/journal"))
  assert.equals(200, r.status)
  return r.json
end

local function valid_request()
  return {
    vnfInstanceId = "4d2c7f10-8e55-4a3b-b6e1-2f9c0d7a5e31",
    vnfLcmOpOccId = "e8b1c3a2-5f4d-4c6e-9a7b-1d0e2f3a4b5c",
    lcmOperationType = "CHANGE_VNFPKG",
    coordinationActionName = "prv.tacker_organization.coordination_test",
    inputParams = {vnfcInstanceId = {"VDU2-0a1b2c3d"}},
    _links = {
      vnfLcmOpOcc = {href = "http://vnfm.test/vnflcm/v2/vnf_lcm_op_occs/e8b1"},
      vnfInstance = {href = "http://vnfm.test/vnflcm/v2/vnf_instances/4d2c"},
    },
  }
end

describe("single requests", function()
  local em, c
  setup(function()
    em = start_em()
    c = lcmcoord.client{endpoint = em.url}
  end)
  teardown(function()
    if c then c:close() end
    if em then em.stop() end
  end)

  it("post returns the response table of a 201", function()
    local r = assert(c:post(valid_request()))
    assert.equals(201, r.status)
    assert.matches("^application/json", r.headers["content-type"])
    for name in pairs(r.headers) do assert.equals(name:lower(), name) end
    assert.equals("string", type(r.body))
    assert.same(lcmcoord.json.decode(r.body), r.json)
    assert.equals("CONTINUE", r.json.coordinationResult)
    assert.is_true(r.elapsed >= 0)
    assert.equals(em.url .. COORDINATIONS, r.url)
  end)

  it("get reads a coordination by id and by URL", function()
    local created = assert(c:post(valid_request()))
    local id = created.json.id
    local by_id = assert(c:get(id))
    assert.equals(200, by_id.status)
    assert.equals(id, by_id.json.id)
    local by_url = assert(c:get(em.url .. COORDINATIONS .. "/" .. id))
    assert.equals(200, by_url.status)
    assert.equals(id, by_url.json.id)
  end)

  it("an error status is a response, not an error", function()
    local r, err = c:get("no-such-coordination")
    assert.is_nil(err)
    assert.equals(404, r.status)
    assert.equals(404, r.json.status)
  end)

  it("cancel of a finished coordination gets the EM's 409", function()
    local created = assert(c:post(valid_request()))
    local r = assert(c:cancel(created.json.id))
    assert.equals(409, r.status)
    assert.equals("string", type(r.json.detail))
  end)

  it("a string body is sent as it is", function()
    local r = assert(c:post("this is not JSON"))
    assert.equals(400, r.status)
    assert.equals(400, r.json.status)
  end)

  it("api_versions returns the ApiVersionInformation", function()
    local r = assert(c:api_versions())
    assert.equals(200, r.status)
    assert.equals("1.0.0", r.json.apiVersions[1].version)
  end)

  it("ids are percent-encoded into one path segment", function()
    local r = assert(c:get("a/b c"))
    assert.equals(404, r.status)
    assert.equals(em.url .. COORDINATIONS .. "/a%2Fb%20c", r.url)
  end)

  it("every request carries the Version header", function()
    for _, entry in ipairs(journal(c, em)) do
      assert.equals("1.0.0", entry.headers.version)
    end
  end)
end)

describe("coordinations with a synchronous EM", function()
  local em, c
  setup(function()
    em = start_em()
    c = lcmcoord.client{endpoint = em.url, timeout = 30}
  end)
  teardown(function()
    if c then c:close() end
    if em then em.stop() end
  end)

  it(":coordinate returns the LcmCoord", function()
    local coord = assert(c:coordinate(valid_request()))
    assert.equals("CONTINUE", coord.coordinationResult)
    assert.equals("string", type(coord.id))
    assert.same({vnfcInstanceId = {"VDU2-0a1b2c3d"}}, coord.outputParams)
  end)

  it("create_coordination returns the LcmCoord", function()
    local coord = lcmcoord.create_coordination(em.url, nil, valid_request(), 30)
    assert.equals("CONTINUE", coord.coordinationResult)
  end)

  it("create_coordination takes any timeout that is not a number as the default", function()
    local coord = lcmcoord.create_coordination(em.url, lcmcoord.null, valid_request(), "30")
    assert.equals("CONTINUE", coord.coordinationResult)
  end)

  it(":record lists this client's coordinations", function()
    local c2 <close> = lcmcoord.client{endpoint = em.url}
    local a = assert(c2:coordinate(valid_request()))
    local b = assert(c2:coordinate(valid_request()))
    local record = c2:record()
    assert.equals(2, #record.lcmCoordinations)
    assert.equals(a.id, record.lcmCoordinations[1].id)
    assert.equals(b.id, record.lcmCoordinations[2].id)
    assert.equals("CONTINUE", record.lcmCoordinations[1].coordinationResult)
    assert.equals("string", type(record.lcmCoordinations[1].startTime))
    assert.equals("string", type(record.lcmCoordinations[1].endTime))
    assert.is_nil(next(record.rejectedLcmCoordinations))
  end)

  it("lcmcoord.record() also has those of closed and temporary clients", function()
    local coord = lcmcoord.create_coordination(em.url, nil, valid_request(), 30)
    local found = false
    for _, entry in ipairs(lcmcoord.record().lcmCoordinations) do
      found = found or entry.id == coord.id
    end
    assert.is_true(found)
  end)
end)

describe("coordinations the EM aborts", function()
  local em
  setup(function() em = start_em("--result", "ABORT") end)
  teardown(function() if em then em.stop() end end)

  it("are results, not errors", function()
    local c <close> = lcmcoord.client{endpoint = em.url}
    local coord = assert(c:coordinate(valid_request()))
    assert.equals("ABORT", coord.coordinationResult)
    assert.equals("VNFC not ready", coord.error.detail)
    coord = lcmcoord.create_coordination(em.url, nil, valid_request(), 30)
    assert.equals("ABORT", coord.coordinationResult)
  end)
end)

describe("an EM that answers 409 with a ProblemDetails", function()
  local em
  setup(function() em = start_em("--scenario", SCENARIOS .. "conflict_409.lua") end)
  teardown(function() if em then em.stop() end end)

  it(":coordinate returns nil and the error with status and problem", function()
    local c <close> = lcmcoord.client{endpoint = em.url}
    local coord, err = c:coordinate(valid_request())
    assert.is_nil(coord)
    assert.is_true(lcmcoord.is_error(err))
    assert.equals("http", err.kind)
    assert.equals(409, err.status)
    assert.equals("VNFC VDU2-0a1b2c3d is still draining", err.problem.detail)
    assert.equals(409, err.problem.status)
    assert.equals("POST", err.method)
    assert.equals(em.url .. COORDINATIONS, err.url)
    assert.matches("409", tostring(err))
    assert.matches("still draining", tostring(err))
  end)

  it("create_coordination raises it", function()
    local ok, err = pcall(lcmcoord.create_coordination, em.url, nil, valid_request(), 30)
    assert.is_false(ok)
    assert.is_true(lcmcoord.is_error(err))
    assert.equals(409, err.status)
  end)
end)

describe("an EM that requires Basic authentication", function()
  local em
  setup(function() em = start_em("--basic", "tacker:tacker") end)
  teardown(function() if em then em.stop() end end)

  local function auth(password)
    return {authType = {"BASIC"}, paramsBasic = {userName = "tacker", password = password}}
  end

  it("accepts the right credentials", function()
    local coord = lcmcoord.create_coordination(em.url, auth("tacker"), valid_request(), 30)
    assert.equals("CONTINUE", coord.coordinationResult)
  end)

  it("refuses a wrong password with an auth error that does not show it", function()
    local ok, err = pcall(lcmcoord.create_coordination, em.url, auth("Wr0ng-9d3f"),
      valid_request(), 30)
    assert.is_false(ok)
    assert.equals("auth", err.kind)
    assert.equals(401, err.status)
    assert.is_nil(tostring(err):find("Wr0ng-9d3f", 1, true))
  end)
end)

describe("an asynchronous EM", function()
  local em, c
  setup(function()
    em = start_em("--mode", "async", "--polls", "1000", "--retry-after", "1")
    c = lcmcoord.client{endpoint = em.url}
  end)
  teardown(function()
    if c then c:close() end
    if em then em.stop() end
  end)

  it("accepts with 202 and Location; cancel leads to CANCELLED", function()
    local accepted = assert(c:post(valid_request()))
    assert.equals(202, accepted.status)
    assert.equals("", accepted.body)
    assert.is_nil(accepted.json)
    local location = accepted.headers.location
    local id = location:match("([^/]+)$")
    assert.equals(202, assert(c:get(location)).status)
    assert.equals(202, assert(c:cancel(id)).status)
    local r = assert(c:get(location))
    while r.status == 202 do r = assert(c:get(location)) end
    assert.equals(200, r.status)
    assert.equals("CANCELLED", r.json.coordinationResult)
  end)
end)

describe("waits and deadlines", function()
  it("a 503 is retried and recorded as a rejection", function()
    local em = start_em("--rejects", "1", "--retry-after", "1")
    local c <close> = lcmcoord.client{endpoint = em.url}
    local coord, err = c:coordinate(valid_request())
    local record = c:record()
    em.stop()
    assert.is_nil(err)
    assert.equals("CONTINUE", coord.coordinationResult)
    assert.equals(1, #record.lcmCoordinations)
    assert.equals(1, #record.rejectedLcmCoordinations)
  end)

  it("the timeout argument bounds a coordination with a stalled EM", function()
    local em = start_em("--delay", "600000")
    local c <close> = lcmcoord.client{endpoint = em.url}
    local started = lcmcoord.now()
    local coord, err = c:coordinate(valid_request(), 1)
    local elapsed = lcmcoord.now() - started
    em.stop()
    assert.is_nil(coord)
    assert.equals("deadline", err.kind)
    -- The EM has the whole POST: it gets the bounded 5 s grace to answer, so that what it
    -- started could be cancelled, and the error says what may be left behind.
    assert.matches("the EM may hold a coordination that could not be cancelled", err.message, 1, true)
    assert.is_true(elapsed < 1 + 5 + 2 * TIME_FACTOR, "took " .. elapsed .. " s")
  end)

  it("the timeout argument bounds each single request, not the client's", function()
    local em = start_em("--delay", "600000")
    local c <close> = lcmcoord.client{endpoint = em.url, timeout = 600}
    local calls = {
      {"post", function() return c:post(valid_request(), 0.5) end},
      {"get", function() return c:get("abc", 0.5) end},
      {"cancel", function() return c:cancel("abc", 0.5) end},
    }
    for _, call in ipairs(calls) do
      local started = lcmcoord.now()
      local r, err = call[2]()
      local elapsed = lcmcoord.now() - started
      assert.is_nil(r, call[1])
      assert.is_not_nil(err, call[1])
      assert.is_true(elapsed < 0.5 + 2 * TIME_FACTOR, call[1] .. " took " .. elapsed .. " s")
    end
    em.stop()
    assert.has_error(function() c:get("abc", -1) end)
    assert.has_error(function() c:api_versions(1e300) end)
  end)
end)
