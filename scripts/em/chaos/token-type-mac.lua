-- /token answers a token_type of mac, not Bearer
-- The token endpoint is the EM's too, and can be as broken as the API. API requests are
-- answered by the ordinary EM (which checks no credentials without --oauth2).
return function(req)
  if req.path == "/token" then
    em.state.issued = (em.state.issued or 0) + 1
    return 200, { ["Content-Type"] = "application/json", ["Cache-Control"] = "no-store" },
      { access_token = "chaos-mac-token", token_type = "mac", expires_in = 3600 }
  end
end
