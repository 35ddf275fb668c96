-- every API request gets 307 with Location pointing back at itself
-- A client that follows redirects loops (or resends the POST elsewhere); it should not.
return function(req)
  if req.path:find("^/lcmcoord/") then
    return 307, { Location = em.base_url .. req.path }, em.problem(307, "try again, here")
  end
end
