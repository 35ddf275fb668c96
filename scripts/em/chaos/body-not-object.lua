-- 201 whose body is the JSON array ["CONTINUE"]
-- Valid JSON, wrong shape: an LcmCoord is an object.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    return 201, { ["Content-Type"] = "application/json" }, '["CONTINUE"]'
  end
end
