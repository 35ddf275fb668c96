-- Asynchronous coordination whose 202 carries a relative Location (a path only), as some
-- producers send: the client must resolve it against the URL it POSTed to. The GETs are
-- left to the defaults (--polls, --result).
-- Run: lcmcoord em --scenario scripts/em/relative_location.lua
return function(req)
  if req.method ~= "POST" or req.path ~= "/lcmcoord/v1/coordinations" or not req.json then
    return
  end
  local status, headers, body = em.accept(req.json)
  local location = headers.Location or ""
  headers.Location = location:gsub("^https?://[^/]+", "")
  return status, headers, body
end
