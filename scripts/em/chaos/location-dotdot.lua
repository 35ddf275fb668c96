-- 202 whose Location is relative with '..' (../v1/coordinations/ID)
-- Resolved against the POST's URL (RFC 3986 §5.2) it names the right resource.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" and req.json then
    local status, headers = em.accept(req.json, { polls = 0 })
    local id = headers.Location:match("/coordinations/([^/]+)$")
    headers.Location = "../v1/coordinations/" .. id
    return status, headers, ""
  end
end
