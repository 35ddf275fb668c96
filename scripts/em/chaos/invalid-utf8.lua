-- 201 LcmCoord whose id holds bytes that are not UTF-8
-- JSON text is UTF-8 (RFC 8259 §8.1); these bytes cannot be passed on as a string.
local body = '{"id":"chaos-\xff\xfe\xc0\xaf","coordinationResult":"CONTINUE",'
  .. '"outputParams":{"note":"\xed\xa0\x80 is a lone surrogate"}}'
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    return 201, { ["Content-Type"] = "application/json" }, body
  end
end
