-- 202 whose Location points at another host (em.other.invalid)
-- Following it would hand the coordination, and any credentials, to someone else.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" and req.json then
    local status, headers = em.accept(req.json)
    headers.Location = "http://em.other.invalid:8080/lcmcoord/v1/coordinations/elsewhere"
    return status, headers, ""
  end
end
