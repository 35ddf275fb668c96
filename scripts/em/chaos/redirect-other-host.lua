-- POST gets 301 Moved Permanently to another host
-- Following it would send the request, and its credentials, to em.other.invalid.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    return 301, { Location = "http://em.other.invalid/lcmcoord/v1/coordinations" },
      em.problem(301, "moved")
  end
end
