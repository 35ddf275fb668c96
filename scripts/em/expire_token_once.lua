-- The first access token used on the API "expires" early: the first API request carrying
-- it gets 401 (WWW-Authenticate: Bearer ... error="invalid_token") and the token is
-- revoked, so retrying with it keeps failing. A client passes when it fetches a new token
-- from the token endpoint and retries once with that one. Needs --oauth2.
return function(req)
  local auth = req.auth
  if auth and auth.scheme == "Bearer" and auth.ok and not em.state.expired then
    em.state.expired = auth.token_seq
    em.revoke_token(auth.token_seq)
    return em.unauthorized("the access token expired")
  end
end
