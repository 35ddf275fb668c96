-- 502 with an HTML page, as a reverse proxy in front of the EM would answer
-- The client must report the status without quoting markup at the operator.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    return 502, { ["Content-Type"] = "text/html; charset=iso-8859-1" },
      "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n<body><h1>Bad "
        .. "Gateway</h1><p>The proxy got an invalid answer from upstream.</p></body></html>\n"
  end
end
