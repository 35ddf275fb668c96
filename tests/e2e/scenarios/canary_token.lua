-- Plays the token endpoint with a token the canary test knows, so that it can check the
-- token never reaches any output. API requests fall through to the default answers.
return function(req)
  if req.path == "/token" then
    return 200, {["Content-Type"] = "application/json", ["Cache-Control"] = "no-store"},
      {access_token = "Canary-Token-5e2c", token_type = "Bearer", expires_in = 3600}
  end
end
