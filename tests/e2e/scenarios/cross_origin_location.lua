-- Answers the POST with 202 and a Location on another origin: "localhost" instead of
-- "127.0.0.1" (the same server, another origin to a client).
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    local other = em.base_url:gsub("127%.0%.0%.1", "localhost")
    return 202, {Location = other .. "/lcmcoord/v1/coordinations/elsewhere-1",
                 ["Retry-After"] = "1"}, ""
  end
end
