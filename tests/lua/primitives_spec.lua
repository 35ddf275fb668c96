-- Specs of the script primitives that need no server: argument errors in Lua's style,
-- auth objects' display and lifecycle, retry policies driven by fn's outcomes, sleep and
-- the clock. (Exchanges with servers are in tests/e2e/test_primitives.py.)
local lcmcoord = require "lcmcoord"

local BASIC = {authType = {"BASIC"}, paramsBasic = {userName = "u", password = "Spec-Pw-1"}}

describe("lcmcoord.http.request", function()
  it("wants a table with a url", function()
    assert.has_error(function() lcmcoord.http.request() end,
      "bad argument #1 to 'request' (table expected, got no value)")
    assert.has_error(function() lcmcoord.http.request{} end,
      "bad argument #1 to 'request' (url: string expected)")
  end)

  it("names bad fields", function()
    assert.has_error(function() lcmcoord.http.request{url = "http://h/", timeout = -1} end,
      "bad argument #1 to 'request' (timeout: positive number of seconds up to 10000000 expected)")
    assert.has_error(function() lcmcoord.http.request{url = "http://h/", headers = {["A:B"] = "x"}} end,
      "bad argument #1 to 'request' (headers: names and values without ':' or line breaks expected)")
  end)

  it("wants a string body, not a number converted on the fly", function()
    assert.has_error(function() lcmcoord.http.request{url = "http://h/", body = 12345} end,
      "bad argument #1 to 'request' (body: string expected)")
  end)

  it("refuses a URL it cannot use, as an error value", function()
    local r, err = lcmcoord.http.request{url = "ftp://h/"}
    assert.is_nil(r)
    assert.equals("usage", err.kind)
  end)
end)

describe("lcmcoord.auth", function()
  it("shows its type and never its secret", function()
    local auth = lcmcoord.auth.new(BASIC)
    assert.equals("lcmcoord.auth (BASIC)", tostring(auth))
    assert.equals("BASIC", auth:type())
    assert.equals("Basic dTpTcGVjLVB3LTE=", auth:header())
    auth:close()
    auth:close()
    assert.equals("lcmcoord.auth (closed)", tostring(auth))
    assert.has_error(function() auth:header() end, "attempt to use a closed auth object")
  end)

  it("names its second argument when the tls table is wrong", function()
    local ok, err = pcall(lcmcoord.auth.new, BASIC, "x")
    assert.is_false(ok)
    assert.matches("bad argument #2", err)
  end)

  it("raises an error value naming the field", function()
    local ok, err = pcall(lcmcoord.auth.new, {authType = {"OAUTH2_CLIENT_CREDENTIALS"}})
    assert.is_false(ok)
    assert.equals("usage", err.kind)
    assert.matches("paramsOauth2ClientCredentials is missing", err.message)
  end)

  it("is accepted where an authentication table is", function()
    local auth <close> = lcmcoord.auth.new(BASIC)
    local c <close> = lcmcoord.client{endpoint = "http://127.0.0.1:1", authentication = auth}
    assert.matches("lcmcoord.client", tostring(c))
  end)
end)

describe("lcmcoord.retry.policy", function()
  it("checks its fields", function()
    assert.has_error(function() lcmcoord.retry.policy{jitter = 2} end,
      "bad argument #1 to 'policy' (retry.jitter: number from 0 to 1 expected)")
    assert.has_error(function() lcmcoord.retry.policy{retry_on = {"sometimes"}} end,
      "bad argument #1 to 'policy' (retry.retry_on: list of statuses (100-599) and \"transport\" expected)")
    assert.has_error(function() lcmcoord.retry.policy{attempt = 3} end)
  end)

  it("runs until the outcome is not retryable", function()
    local policy = lcmcoord.retry.policy{attempts = 5, base = 0.01, floor = 0.01}
    local calls = 0
    local r = policy:run(function(attempt)
      calls = attempt
      return {status = attempt < 3 and 503 or 204}
    end)
    assert.equals(3, calls)
    assert.equals(204, r.status)
  end)

  it("gives back the last outcome when attempts run out", function()
    local policy = lcmcoord.retry.policy{attempts = 2, base = 0.01, floor = 0.01}
    local calls = 0
    local r = policy:run(function(attempt)
      calls = attempt
      return {status = 503}
    end)
    assert.equals(2, calls)
    assert.equals(503, r.status)
  end)

  it("passes through what fn returns when it is not a response", function()
    local policy = lcmcoord.retry.policy{}
    local a, b, c = policy:run(function() return "done", 2, 3 end)
    assert.same({"done", 2, 3}, {a, b, c})
  end)

  it("lets a raised error through at once", function()
    local policy = lcmcoord.retry.policy{attempts = 5}
    assert.has_error(function() policy:run(function() error("boom", 0) end) end, "boom")
  end)
end)

describe("sleep and now", function()
  it("sleeps at least as long as asked on a monotonic clock", function()
    local t0 = lcmcoord.now()
    assert.is_true(lcmcoord.sleep(0.05))
    assert.is_true(lcmcoord.now() - t0 >= 0.05)
    assert.has_error(function() lcmcoord.sleep(-1) end)
  end)
end)
