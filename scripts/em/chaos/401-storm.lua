-- /token issues tokens, then every API request gets 401 invalid_token
-- An EM that refuses every token: one new token and one retry, then an auth error, not a
-- storm of token requests.
return function(req)
  if req.path == "/token" then
    em.state.issued = (em.state.issued or 0) + 1
    return 200, { ["Content-Type"] = "application/json", ["Cache-Control"] = "no-store" },
      { access_token = "chaos-token-" .. em.state.issued, token_type = "Bearer",
        expires_in = 3600 }
  end
  if req.path:find("^/lcmcoord/") then
    return em.unauthorized("token refused (chaos)", "Bearer")
  end
end
