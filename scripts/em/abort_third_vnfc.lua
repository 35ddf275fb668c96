-- The EM aborts the third coordination it is asked for (think: the third VNFC is not
-- ready) and lets every other one continue. Only valid POSTs to /coordinations are
-- counted, so a client's retries of a rejected request count again.
-- Run: lcmcoord em --scenario scripts/em/abort_third_vnfc.lua
return function(req)
  if req.method ~= "POST" or req.path ~= "/lcmcoord/v1/coordinations" or not req.json then
    return -- everything else: the command-line behaviour
  end
  em.state.seen = (em.state.seen or 0) + 1
  local result = em.state.seen == 3 and "ABORT" or "CONTINUE"
  local coord = em.lcmcoord(req.json, result)
  return 201, { Location = coord._links.self.href }, coord
end
