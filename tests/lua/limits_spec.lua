-- Specs of the module's edges under a stock lua5.4 (and, through scripts/apicheck.sh, a Lua
-- built with LUA_USE_APICHECK): every number a script hands to a binding is range-checked
-- before C converts it (a huge, infinite or NaN timeout or count is a one-line error naming
-- the field, never undefined behaviour), and policy:run gives back any number of results.
local lcmcoord = require "lcmcoord"

-- Nothing listens on port 1 of the loopback: connections are refused at once.
local REFUSED = "http://127.0.0.1:1"
local BASIC = {authType = {"BASIC"}, paramsBasic = {userName = "u", password = "Spec-Pw-2"}}

-- The values no conversion to an integer or to milliseconds survives.
local HOSTILE = {
  {"1e300", 1e300}, {"-1e300", -1e300}, {"nan", 0 / 0},
  {"inf", math.huge}, {"-inf", -math.huge},
}

local function request()
  return lcmcoord.request{action = "prv.example.drain"}
end

-- fn(v) must raise one line naming `field` for every hostile value.
local function refuses_all(field, fn)
  for _, case in ipairs(HOSTILE) do
    local ok, err = pcall(fn, case[2])
    assert(not ok, field .. " = " .. case[1] .. " was accepted")
    local message = tostring(err)
    assert(message:find(field, 1, true), field .. " = " .. case[1] .. ": " .. message)
    assert(not message:find("\n", 1, true), "more than one line: " .. message)
  end
end

describe("numbers from scripts", function()
  it("http.request checks timeout", function()
    refuses_all("timeout", function(v) return lcmcoord.http.request{url = REFUSED, timeout = v} end)
  end)

  it("retry.policy checks every numeric field", function()
    for _, field in ipairs{"attempts", "deadline", "base", "max", "multiplier", "jitter", "floor"} do
      refuses_all("retry." .. field, function(v) return lcmcoord.retry.policy{[field] = v} end)
      refuses_all("retry." .. field, function(v)
        return lcmcoord.http.request{url = REFUSED, retry = {[field] = v}}
      end)
    end
  end)

  it("retry.policy takes attempts as a whole number only", function()
    assert.has_error(function() lcmcoord.retry.policy{attempts = 2.5} end,
      "bad argument #1 to 'policy' (retry.attempts: integer from 0 to 1000000 expected)")
    assert.has_no.errors(function() lcmcoord.retry.policy{attempts = 3.0} end)
  end)

  it("lcmcoord.client checks its numeric options", function()
    for _, field in ipairs{"timeout", "wait_floor", "default_interval", "token_refresh_margin"} do
      refuses_all("'" .. field .. "'", function(v)
        return lcmcoord.client{endpoint = REFUSED, [field] = v}
      end)
    end
  end)

  it("client calls check their timeout", function()
    local c <close> = lcmcoord.client{endpoint = REFUSED}
    refuses_all("to 'coordinate' (timeout: number of seconds from 0 to 10000000 expected)", function(v) return c:coordinate(request(), v) end)
    refuses_all("timeout", function(v) return c:coordinate_all({request()}, {timeout = v}) end)
    refuses_all("max_connections", function(v)
      return c:coordinate_all({request()}, {max_connections = v})
    end)
  end)

  it("create_coordination refuses a timeout too large to keep", function()
    for _, v in ipairs{1e300, math.huge} do
      assert.has_error(function()
        lcmcoord.create_coordination(REFUSED, nil, request(), v)
      end, "bad argument #4 to 'create_coordination' (timeout: at most 10000000 seconds expected)")
    end
  end)

  it("auth:header checks its timeout", function()
    local auth <close> = lcmcoord.auth.new(BASIC)
    refuses_all("to 'header' (timeout: number of seconds from 0 to 10000000 expected)", function(v) return auth:header(v) end)
  end)

  it("ssh.connect checks timeout, port and max_output", function()
    local base = {host = "127.0.0.1", port = 1, user = "nobody", password = "canary-secret",
                  host_key_sha256 = "SHA256:NGN/to15B+0XdDtbYkbfDa4zj/oWFRlCBAdqSCP4FeU"}
    for _, field in ipairs{"timeout", "port", "max_output"} do
      refuses_all("'" .. field .. "'", function(v)
        local o = {}
        for k, value in pairs(base) do o[k] = value end
        o[field] = v
        return lcmcoord.ssh.connect(o)
      end)
    end
  end)

  it("sleep checks its seconds", function()
    refuses_all("to 'sleep' (seconds: number from 0 to 10000000 expected)", function(v) return lcmcoord.sleep(v) end)
  end)
end)

describe("policy:run", function()
  local many = {}
  for i = 1, 10000 do many[i] = i end

  it("gives back every result of fn, however many", function()
    local policy = lcmcoord.retry.policy{attempts = 2, base = 0.01, floor = 0.01}
    local calls = 0
    local results = table.pack(policy:run(function(attempt)
      calls = attempt
      -- A 503 first: the policy reads the outcome above 10,001 results, then calls again.
      return {status = attempt == 1 and 503 or 200}, table.unpack(many)
    end))
    assert.equals(2, calls)
    assert.equals(10001, results.n)
    assert.equals(200, results[1].status)
    assert.equals(10000, results[10001])
  end)

  it("gives back many results of fn after nil, err", function()
    local policy = lcmcoord.retry.policy{attempts = 1}
    local results = table.pack(policy:run(function()
      return nil, {kind = "other"}, table.unpack(many)
    end))
    assert.equals(10002, results.n)
  end)
end)
