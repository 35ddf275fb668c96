-- Specs of the `lcmcoord` module that need no EM: loading, JSON, argument checking, the
-- client's lifecycle, and error values from failures that happen before or without an
-- answer (invalid requests, a refused connection). Runs under a stock lua5.4 with
-- LUA_CPATH pointing at the built lib/lua/5.4/lcmcoord.so.
local lcmcoord = require "lcmcoord"

-- Nothing listens on port 1 of the loopback: connections are refused at once.
local REFUSED = "http://127.0.0.1:1"

local function valid_request()
  return {
    vnfInstanceId = "4d2c7f10-8e55-4a3b-b6e1-2f9c0d7a5e31",
    vnfLcmOpOccId = "e8b1c3a2-5f4d-4c6e-9a7b-1d0e2f3a4b5c",
    lcmOperationType = "CHANGE_VNFPKG",
    coordinationActionName = "prv.tacker_organization.coordination_test",
    _links = {
      vnfLcmOpOcc = {href = "http://vnfm.test/vnflcm/v2/vnf_lcm_op_occs/e8b1"},
      vnfInstance = {href = "http://vnfm.test/vnflcm/v2/vnf_instances/4d2c"},
    },
  }
end

describe("the lcmcoord module", function()
  it("tells its version", function()
    assert.matches("^%d+%.%d+%.%d+$", lcmcoord.version)
    assert.equals("lcmcoord " .. lcmcoord.version, lcmcoord._VERSION)
  end)

  describe("json", function()
    it("round-trips tables", function()
      local text = lcmcoord.json.encode({a = {1, 2, 3}, b = "x"})
      assert.same({a = {1, 2, 3}, b = "x"}, lcmcoord.json.decode(text))
    end)

    it("maps JSON null to lcmcoord.null, also lcmcoord.json.null", function()
      assert.equals(lcmcoord.null, lcmcoord.json.null)
      assert.equals("userdata", type(lcmcoord.null))
      assert.equals(lcmcoord.null, lcmcoord.json.decode('{"a": null}').a)
      assert.equals('{"a":null}', lcmcoord.json.encode({a = lcmcoord.null}))
    end)

    it("encodes an empty table as an object", function()
      assert.equals("{}", lcmcoord.json.encode({}))
    end)
  end)
end)

describe("bad arguments raise in Lua's style", function()
  local c
  before_each(function() c = lcmcoord.client{endpoint = REFUSED} end)
  after_each(function() c:close() end)

  it("create_coordination: endpoint", function()
    assert.has_error(function() lcmcoord.create_coordination() end,
      "bad argument #1 to 'create_coordination' (string expected, got no value)")
  end)

  it("create_coordination: authentication", function()
    assert.has_error(function() lcmcoord.create_coordination(REFUSED, 5, {}) end,
      "bad argument #2 to 'create_coordination' (table, lcmcoord.auth or nil expected, got number)")
  end)

  it("create_coordination: request", function()
    assert.has_error(function() lcmcoord.create_coordination(REFUSED, nil, nil) end,
      "bad argument #3 to 'create_coordination' (table expected, got nil)")
  end)

  it("create_coordination: a request JSON cannot hold", function()
    local ok, err = pcall(lcmcoord.create_coordination, REFUSED, nil, {f = print})
    assert.is_false(ok)
    assert.matches("^bad argument #3 to .- %(cannot encode as JSON: ", err)
  end)

  it("client: options table", function()
    assert.has_error(function() lcmcoord.client() end,
      "bad argument #1 to 'client' (table expected, got no value)")
  end)

  it("client: missing endpoint", function()
    assert.has_error(function() lcmcoord.client{} end,
      "bad argument #1 to 'client' (field 'endpoint': string expected, got nil)")
  end)

  it("client: misspelt option", function()
    assert.has_error(function() lcmcoord.client{endpoint = REFUSED, timout = 3} end,
      "bad argument #1 to 'client' (unknown field 'timout')")
  end)

  it("client: option of the wrong type", function()
    assert.has_error(function() lcmcoord.client{endpoint = REFUSED, timeout = "3"} end,
      "bad argument #1 to 'client' (field 'timeout': number expected, got string)")
    assert.has_error(function() lcmcoord.client{endpoint = REFUSED, tls = {verify = "no"}} end,
      "bad argument #1 to 'client' (field 'tls.verify': boolean expected, got string)")
  end)

  it("coordinate: request", function()
    assert.has_error(function() c:coordinate(nil) end,
      "bad argument #1 to 'coordinate' (table expected, got nil)")
  end)

  it("coordinate: timeout", function()
    assert.has_error(function() c:coordinate(valid_request(), "soon") end,
      "bad argument #2 to 'coordinate' (number expected, got string)")
  end)

  it("get and cancel: id", function()
    assert.has_error(function() c:get() end,
      "bad argument #1 to 'get' (string expected, got no value)")
    assert.has_error(function() c:cancel("") end,
      "bad argument #1 to 'cancel' (empty coordination id)")
  end)

  it("post: body", function()
    assert.has_error(function() c:post(42) end,
      "bad argument #1 to 'post' (table or string expected, got number)")
  end)

  it("a method called on something else", function()
    assert.has_error(function() c.get({}, "x") end,
      "bad argument #1 to 'get' (lcmcoord.client expected, got table)")
  end)
end)

describe("the client's lifecycle", function()
  it("shows its endpoint", function()
    local c = lcmcoord.client{endpoint = REFUSED}
    assert.equals("lcmcoord.client (" .. REFUSED .. ")", tostring(c))
    c:close()
  end)

  it("refuses an endpoint carrying credentials, without repeating them", function()
    local ok, err = pcall(lcmcoord.client, {endpoint = "http://user:s3cret@127.0.0.1:1"})
    assert.is_false(ok)
    assert.equals("usage", err.kind)
    assert.matches("must not carry user:password@", tostring(err))
    assert.is_nil(tostring(err):find("s3cret", 1, true))
  end)

  it("closes idempotently", function()
    local c = lcmcoord.client{endpoint = REFUSED}
    c:close()
    c:close()
    assert.equals("lcmcoord.client (closed)", tostring(c))
  end)

  it("refuses every method after close", function()
    local c = lcmcoord.client{endpoint = REFUSED}
    c:close()
    for _, call in ipairs{
      function() return c:coordinate(valid_request()) end,
      function() return c:post({}) end,
      function() return c:get("x") end,
      function() return c:cancel("x") end,
      function() return c:api_versions() end,
      function() return c:record() end,
    } do
      assert.has_error(call, "attempt to use a closed client")
    end
  end)

  it("closes at the end of a to-be-closed variable's scope", function()
    local kept
    do
      local c <close> = lcmcoord.client{endpoint = REFUSED}
      kept = c
      assert.equals("lcmcoord.client (" .. REFUSED .. ")", tostring(kept))
    end
    assert.equals("lcmcoord.client (closed)", tostring(kept))
  end)

  it("is collected without close", function()
    -- Nothing in the module may keep an unclosed client alive: once the script drops it,
    -- a weak table loses it (its __gc closes it; the sanitizer build checks that path).
    local seen = setmetatable({}, {__mode = "v"})
    seen[1] = lcmcoord.client{endpoint = REFUSED}
    seen[2] = lcmcoord.client{endpoint = REFUSED, authentication = lcmcoord.auth.new{
      authType = {"BASIC"}, paramsBasic = {userName = "u", password = "p"}}}
    collectgarbage()
    collectgarbage()
    assert.is_nil(seen[1])
    assert.is_nil(seen[2])
  end)

  it("raises an error value when the runtime refuses the options", function()
    local ok, err = pcall(lcmcoord.client, {endpoint = "not a URL"})
    assert.is_false(ok)
    assert.is_true(lcmcoord.is_error(err))
    assert.equals("usage", err.kind)
    assert.matches("endpoint", err.message)
  end)
end)

describe("error values", function()
  local c
  before_each(function() c = lcmcoord.client{endpoint = REFUSED, timeout = 5} end)
  after_each(function() c:close() end)

  it("describe a failed exchange", function()
    local r, err = c:api_versions()
    assert.is_nil(r)
    assert.is_true(lcmcoord.is_error(err))
    assert.equals("transport", err.kind)
    assert.equals("string", type(err.message))
    assert.equals(err.message, tostring(err))
    assert.equals("GET", err.method)
    assert.equals(REFUSED .. "/lcmcoord/v1/api_versions", err.url)
    assert.is_nil(err.status)
    assert.is_nil(err.problem)
    assert.equals("lcmcoord.error", getmetatable(err).__name)
  end)

  it("share one metatable", function()
    local _, a = c:api_versions()
    local _, b = c:get("x")
    assert.equals(getmetatable(a), getmetatable(b))
  end)

  it("travel through error() unchanged", function()
    -- (busted replaces the global assert, so Lua's own is not at hand here)
    local ok, err = pcall(function()
      local r, e = c:api_versions()
      return r or error(e)
    end)
    assert.is_false(ok)
    assert.is_true(lcmcoord.is_error(err))
    assert.equals("transport", err.kind)
  end)

  it("are told apart from other values", function()
    assert.is_false(lcmcoord.is_error({kind = "transport", message = "x"}))
    assert.is_false(lcmcoord.is_error("transport"))
    assert.is_false(lcmcoord.is_error(nil))
    assert.has_error(function() lcmcoord.is_error() end,
      "bad argument #1 to 'is_error' (value expected)")
  end)

  it("never show credentials a URL carries", function()
    local c <close> = lcmcoord.client{endpoint = REFUSED}
    local _, err = c:get("http://user:s3cret@127.0.0.1:1/lcmcoord/v1/coordinations/1")
    assert.is_true(lcmcoord.is_error(err))
    assert.is_nil(err.url:find("s3cret", 1, true))
    assert.is_nil(err.message:find("s3cret", 1, true))
  end)
end)

describe("invalid requests", function()
  it(":coordinate returns nil and an invalid_request error naming the field", function()
    local c <close> = lcmcoord.client{endpoint = REFUSED}
    local req = valid_request()
    req.vnfLcmOpOccId = nil
    local coord, err = c:coordinate(req)
    assert.is_nil(coord)
    assert.equals("invalid_request", err.kind)
    assert.matches("vnfLcmOpOccId", err.message)
  end)

  it("create_coordination raises it", function()
    local req = valid_request()
    req.lcmOperationType = "REBOOT"
    local ok, err = pcall(lcmcoord.create_coordination, REFUSED, nil, req, 5)
    assert.is_false(ok)
    assert.is_true(lcmcoord.is_error(err))
    assert.equals("invalid_request", err.kind)
    assert.matches("lcmOperationType", err.message)
  end)

  it("are not recorded as coordinations", function()
    local c <close> = lcmcoord.client{endpoint = REFUSED}
    c:coordinate({})
    local record = c:record()
    assert.is_nil(next(record.lcmCoordinations))
    assert.is_nil(next(record.rejectedLcmCoordinations))
  end)
end)
