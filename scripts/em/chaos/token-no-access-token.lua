-- /token answers 200 without access_token
-- The token endpoint is the EM's too, and can be as broken as the API. API requests are
-- answered by the ordinary EM (which checks no credentials without --oauth2).
return function(req)
  if req.path == "/token" then
    em.state.issued = (em.state.issued or 0) + 1
    return 200, { ["Content-Type"] = "application/json", ["Cache-Control"] = "no-store" },
      { token_type = "Bearer", expires_in = 3600 }
  end
end
