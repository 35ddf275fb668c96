-- 403 whose detail holds terminal escapes, line breaks and 20 KB of text
-- Error text goes to the operator's terminal and the VNFM's records: it must arrive as one
-- bounded line without control characters.
local detail = "refused\27[2J\27[31m\nlcmcoord: coordination CONTINUE\r\n\7"
  .. string.rep("padding ", 2500)
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    return 403, nil, em.problem(403, detail)
  end
end
