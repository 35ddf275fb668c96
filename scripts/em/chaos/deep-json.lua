-- 201 whose body is 100,000 nested JSON arrays (200 KB)
-- A recursive parser without a depth limit overflows its stack on this.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    return 201, { ["Content-Type"] = "application/json" },
      string.rep("[", 100000) .. string.rep("]", 100000)
  end
end
