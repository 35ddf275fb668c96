-- Every API request is refused with 401, whatever token it carries: a client must try one
-- new token, then give up with an auth error.
return function(req)
  if req.path:find("^/lcmcoord/") then
    return em.unauthorized("token refused by policy")
  end
end
