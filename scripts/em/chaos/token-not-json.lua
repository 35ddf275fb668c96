-- /token answers 200 with an HTML login page
-- A portal or proxy in the way of the token endpoint: no token, and nothing to quote.
return function(req)
  if req.path == "/token" then
    return 200, { ["Content-Type"] = "text/html" },
      "<html><body><form action=\"/login\">Please log in</form></body></html>"
  end
end
