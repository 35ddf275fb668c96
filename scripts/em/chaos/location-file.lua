-- 202 whose Location is file:///etc/passwd
-- Only http and https are the EM's; a URL library that follows any scheme reads local files.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" and req.json then
    local status, headers = em.accept(req.json)
    headers.Location = "file:///etc/passwd"
    return status, headers, ""
  end
end
