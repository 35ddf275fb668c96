-- 202 with an empty Location header
-- Present but empty is as good as absent: there is nothing to poll.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" and req.json then
    local status, headers = em.accept(req.json)
    headers.Location = ""
    return status, headers, ""
  end
end
