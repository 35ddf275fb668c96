-- 201 Created with an empty body
-- A finished synchronous coordination without its LcmCoord: there is no result to act on.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    return 201, { ["Content-Type"] = "application/json" }, nil
  end
end
