-- 202 whose absolute Location ends in a #fragment
-- A fragment is never sent (RFC 9110 §4.2.4): the client polls the URL without it.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" and req.json then
    local status, headers = em.accept(req.json, { polls = 0 })
    headers.Location = headers.Location .. "#chaos-fragment"
    return status, headers, ""
  end
end
