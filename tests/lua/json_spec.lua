-- Specs of the module's value model (docs/lua-api.md, "JSON values"): lcmcoord.json and the
-- converter every request and answer goes through. Each rule is tried from both sides:
-- what decodes, what encodes, and what is refused with which message. Runs under a stock
-- lua5.4 with LUA_CPATH pointing at the built lib/lua/5.4/lcmcoord.so.
local lcmcoord = require "lcmcoord"
local json = lcmcoord.json

-- The error message of f(...), which must fail.
local function failure(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected a failure")
  return tostring(err)
end

-- A table nested `depth` deep: {{{...}}} with `depth` tables in all.
local function nested(depth)
  local root = {}
  local current = root
  for _ = 2, depth do
    current[1] = {}
    current = current[1]
  end
  return root
end

describe("lcmcoord.json", function()
  describe("integers", function()
    it("decode to Lua integers, also past 2^53 and at the 64-bit limits", function()
      for _, text in ipairs{"3", "0", "-7", "1732700000123456", "12345678901234567",
                            "9223372036854775807", "-9223372036854775808"} do
        local v = json.decode(text)
        assert.equals("integer", math.type(v), text)
        assert.equals(text, string.format("%d", v))
      end
    end)

    it("encode as integers, digit for digit", function()
      assert.equals("3", json.encode(3))
      assert.equals("1732700000123456", json.encode(1732700000123456))
      assert.equals("12345678901234567", json.encode(12345678901234567))
      assert.equals("-9223372036854775808", json.encode(math.mininteger))
      assert.equals('{"n":12345678901234567}', json.encode({n = 12345678901234567}))
    end)

    it("past 64 bits are refused with the place, not rounded into a float", function()
      local err = failure(json.decode, '{"a": 1, "serial": 92233720368547758070}')
      assert.matches("a number out of range %(integers are 64%-bit, reals IEEE doubles%) at line 1, column %d+", err)
      assert.not_matches("9223372036854775807", err)
      failure(json.decode, "-9223372036854775809")
    end)
  end)

  describe("floats", function()
    it("round-trip to the same double, 0.1 and -0.0 included", function()
      for _, v in ipairs{0.1, -0.0, 1.7976931348623157e308, 5e-324, 1 / 3, 3.0, -2.5e-10,
                         123456.789, 2 ^ 53 + 0.0} do
        local back = json.decode(json.encode(v))
        assert.equals("float", math.type(back), tostring(v))
        assert.equals(v, back)
        assert.equals(1 / v, 1 / back) -- tells -0.0 from 0.0
      end
    end)

    it("decode as floats, whole ones too", function()
      assert.equals("float", math.type(json.decode("3.0")))
      assert.equals("float", math.type(json.decode("1e2")))
      assert.equals(0.1, json.decode("0.1"))
    end)

    it("encode with 17 significant digits and a point or exponent", function()
      assert.equals("0.10000000000000001", json.encode(0.1))
      assert.equals("3.0", json.encode(3.0))
      assert.equals("-0.0", json.encode(-0.0))
      assert.equals("1.7976931348623157e308", json.encode(1.7976931348623157e308))
    end)

    it("NaN and the infinities are refused both ways", function()
      assert.matches("NaN is not a JSON number", failure(json.encode, 0 / 0))
      assert.matches("ratio: an infinity is not a JSON number",
                     failure(json.encode, {ratio = math.huge}))
      assert.matches("%[2%]: an infinity", failure(json.encode, {1, -math.huge}))
      failure(json.decode, "NaN")
      failure(json.decode, "[Infinity]")
      failure(json.decode, "1e400")
    end)
  end)

  describe("null", function()
    it("is lcmcoord.null, also lcmcoord.json.null, both ways", function()
      assert.equals(lcmcoord.null, json.null)
      assert.equals(json.null, json.decode("null"))
      assert.equals(json.null, json.decode('{"a": null}').a)
      assert.equals(json.null, json.decode("[null]")[1])
      assert.equals('{"a":null}', json.encode({a = json.null}))
      assert.equals("[1,null,3]", json.encode({1, json.null, 3}))
    end)

    it("nil at the top encodes as null; a hole in an array is refused", function()
      assert.equals("null", json.encode(nil))
      assert.matches("a sparse array %(index 3 is set but only 2 values are%)",
                     failure(json.encode, {1, nil, 3}))
    end)
  end)

  describe("empty arrays and objects", function()
    it("decode to tables that encode back as they were", function()
      assert.equals("[]", json.encode(json.decode("[]")))
      assert.equals("{}", json.encode(json.decode("{}")))
      assert.equals('{"a":[]}', json.encode(json.decode('{"a":[]}')))
      assert.equals('[{}]', json.encode(json.decode('[{}]')))
    end)

    it("arrays carry the lcmcoord.json.array marker; objects carry nothing", function()
      assert.is_true(json.is_array(json.decode("[]")))
      assert.is_true(json.is_array(json.decode("[1,2]")))
      assert.is_false(json.is_array(json.decode("{}")))
      assert.is_nil(getmetatable(json.decode('{"a":1}')))
      assert.is_false(json.is_array({}))
      assert.is_false(json.is_array("[]"))
    end)

    it("a plain empty table is an object; json.array makes an array", function()
      assert.equals("{}", json.encode({}))
      assert.equals("[]", json.encode(json.array()))
      assert.equals("[]", json.encode(json.array({})))
      local t = {}
      assert.equals(t, json.array(t))
      assert.equals('{"warnings":[]}', json.encode({warnings = json.array()}))
    end)

    it("an array emptied by a script stays an array", function()
      local list = json.decode('[1, 2]')
      list[2], list[1] = nil, nil
      assert.equals("[]", json.encode(list))
    end)

    it("json.array refuses a table with another metatable and a marked table with names", function()
      assert.matches("already has a metatable", failure(json.array, setmetatable({}, {})))
      assert.matches("an array %(lcmcoord.json.array%) with a string key",
                     failure(json.encode, json.array({a = 1})))
    end)
  end)

  describe("tables without a JSON form are refused, naming where", function()
    it("mixed keys", function()
      assert.matches("lcmcoord.json.encode: inputParams: a table with both string and integer keys",
                     failure(json.encode, {inputParams = {1, 2, name = "x"}}))
    end)

    it("sparse arrays", function()
      assert.matches("list: a sparse array %(index 5 is set but only 2 values are%)",
                     failure(json.encode, {list = {[1] = "a", [5] = "b"}}))
    end)

    it("keys that are neither strings nor indexes", function()
      assert.matches("a table with a float key", failure(json.encode, {[1.5] = true}))
      assert.matches("a table with a boolean key", failure(json.encode, {[true] = 1}))
      assert.matches("a table with an integer key below 1", failure(json.encode, {[0] = 1}))
      assert.matches("a table with a key that is neither", failure(json.encode, {[{}] = 1}))
    end)

    it("functions, coroutines and userdata", function()
      assert.matches("inputParams.vnfc%[2%].check: a function cannot be JSON",
                     failure(json.encode, {inputParams = {vnfc = {{}, {check = print}}}}))
      assert.matches("a thread cannot be JSON", failure(json.encode, {coroutine.create(print)}))
      assert.matches("a userdata cannot be JSON", failure(json.encode, {io.stdout}))
    end)

    it("cycles", function()
      local t = {name = "loop"}
      t.self = t
      assert.matches("self: a table that contains itself %(a cycle%)", failure(json.encode, t))
      local a, b = {}, {}
      a.b, b.a = b, a
      assert.matches("b.a: a table that contains itself", failure(json.encode, a))
    end)

    it("but a table shared by two members is not a cycle", function()
      local shared = {1}
      assert.equals('{"list":[[1],[1]]}', json.encode({list = {shared, shared}}))
    end)

    it("keys that are not identifiers are quoted, and long paths lose their middle", function()
      assert.matches('%["a b"%]%["x\\34y"%]: a function',
                     failure(json.encode, {["a b"] = {['x"y'] = print}}))
      local deep = nested(20)
      local leaf = deep
      for _ = 2, 20 do leaf = leaf[1] end
      leaf[1] = print
      local err = failure(json.encode, deep)
      assert.matches("encode: %[1%]%[1%]%[1%]%[1%]%.%.%.%[1%]%[1%]%[1%]%[1%]: a function", err)
    end)
  end)

  describe("nesting", function()
    it("is accepted up to max_depth both ways, and refused one deeper", function()
      assert.equals(2048, json.max_depth)
      local text = json.encode(nested(json.max_depth))
      assert.equals(string.rep("[", 2047) .. "{}" .. string.rep("]", 2047), text)
      assert.is_table(json.decode(text))
      assert.matches("tables nested deeper than 2048", failure(json.encode, nested(2049)))
      local too_deep = string.rep("[", 2049) .. string.rep("]", 2049)
      assert.matches("arrays and objects nested deeper than 2048 at line 1, column",
                     failure(json.decode, too_deep))
    end)
  end)

  describe("text rules (the runtime's)", function()
    it("duplicate keys are refused", function()
      assert.matches("an object has the same key twice at line 1, column 12",
                     failure(json.decode, '{"a": 1, "a": 2}'))
    end)

    it("NUL is refused in strings and keys, both ways", function()
      assert.matches("a NUL character", failure(json.decode, '"a\\u0000b"'))
      assert.matches("a NUL character", failure(json.decode, '{"a\\u0000": 1}'))
      assert.matches("%[1%]: a string with a NUL byte", failure(json.encode, {"a\0b"}))
      assert.matches('%["a\\0"%]: a key with a NUL byte', failure(json.encode, {["a\0"] = 1}))
    end)

    it("invalid UTF-8 is refused both ways", function()
      assert.matches("invalid UTF%-8 at line 1", failure(json.decode, '"\255"'))
      assert.matches("invalid UTF%-8", failure(json.decode, '"\237\160\128"')) -- a surrogate
      assert.matches("name: a string that is not valid UTF%-8",
                     failure(json.encode, {name = "\192\128"}))
      assert.matches("a key that is not valid UTF%-8", failure(json.encode, {["\255"] = 1}))
    end)

    it("messages give the place, never the text", function()
      local err = failure(json.decode, '{"password": "s3cret", ')
      assert.not_matches("s3cret", err)
      assert.matches("line 1, column", err)
    end)

    it("any value decodes at the top; text after it is refused", function()
      assert.equals("x", json.decode('"x"'))
      assert.is_true(json.decode("true"))
      assert.matches("more text after the value", failure(json.decode, "1 2"))
      assert.matches("ends before the value does", failure(json.decode, "[1,"))
    end)

    it("UTF-8 and escapes decode to the same bytes and encode back", function()
      local s = json.decode('"caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\\\ /"')
      assert.equals("café 😀 \"q\" \\ /", s)
      assert.equals(s, json.decode(json.encode(s)))
    end)
  end)

  it("round-trips a whole LcmCoord-like document", function()
    local text = '{"id":"c-1","coordinationResult":"CONTINUE","warnings":[],' ..
                 '"outputParams":{"serial":1732700000123456,"ratio":0.1,"none":null,"tags":[]},' ..
                 '"error":{}}'
    local value = json.decode(text)
    assert.same(value, json.decode(json.encode(value)))
    assert.equals("integer", math.type(value.outputParams.serial))
    assert.equals(json.null, value.outputParams.none)
    assert.equals("[]", json.encode(value.outputParams.tags))
    assert.equals("{}", json.encode(value.error))
  end)
end)

describe("the module's requests use the same converter", function()
  local REFUSED = "http://127.0.0.1:1"
  local function request(input)
    return {
      vnfInstanceId = "4d2c7f10-8e55-4a3b-b6e1-2f9c0d7a5e31",
      vnfLcmOpOccId = "e8b1c3a2-5f4d-4c6e-9a7b-1d0e2f3a4b5c",
      lcmOperationType = "CHANGE_VNFPKG",
      coordinationActionName = "prv.tacker_organization.coordination_test",
      inputParams = input,
      _links = {
        vnfLcmOpOcc = {href = "http://vnfm.test/vnflcm/v2/vnf_lcm_op_occs/e8b1"},
        vnfInstance = {href = "http://vnfm.test/vnflcm/v2/vnf_instances/4d2c"},
      },
    }
  end

  it("a request that has no JSON form is refused before anything is sent, naming where", function()
    local c = lcmcoord.client{endpoint = REFUSED}
    local err = failure(c.coordinate, c, request({check = print}))
    assert.matches("cannot encode as JSON: inputParams.check: a function cannot be JSON", err)
    err = failure(c.coordinate_all, c, {request({}), request({n = 0 / 0})})
    assert.matches("request 2: inputParams.n: NaN is not a JSON number", err)
    c:close()
  end)
end)
