-- EM scenario for test_value_model.py: POST /coordinations answers 201 with an LcmCoord whose
-- outputParams hold numbers that lose digits in a double or in 14-digit text (integers past
-- 2^53 and 10^15, the largest double, 0.1, -0.0) next to the inputParams the EM received, so
-- that a script can show what it got back from the EM. A request whose action ends in
-- ".refused" gets a 409 whose ProblemDetails holds such an integer; GET /_values/<name>
-- answers a fixed JSON text, some of which break the JSON rules (docs/lua-api.md).
local TEXTS = {
  ints = '{"serial": 1732700000123456, "ratio": 0.1, "list": []}',
  duplicate = '{"a": 1, "a": 2}',
  huge = '{"serial": 92233720368547758070}',
  nul = '{"name": "a\\u0000b"}',
}

return function(req)
  local name = req.method == "GET" and req.path:match("^/_values/(%w+)$")
  if name and TEXTS[name] then
    return 200, {["Content-Type"] = "application/json"}, TEXTS[name]
  end
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations"
     and tostring(req.json.coordinationActionName):match("%.refused$") then
    return 409, {}, {status = 409, detail = "not now", retryAfterSerial = 1732700000123456}
  end
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    local doc = em.lcmcoord(req.json, "CONTINUE")
    doc.outputParams = {
      requestSerial = 1732700000123456,
      maxSessions = 12345678901234567,
      smallest = math.mininteger,
      ratio = 0.1,
      big = 1.7976931348623157e308,
      negativeZero = -0.0,
      whole = 3.0,
      received = req.json.inputParams,
    }
    return 201, {}, doc
  end
end
