-- EM scenario for test_batch.py: every POST /coordinations whose coordinationActionName
-- ends in a number N is accepted asynchronously (202 + Location) with (N * 7) % 5 polls
-- answering 202 before the 200, so that coordinations finish in an order unrelated to
-- the order they were sent in. Run the simulator with --retry-after 0 and give the client
-- a small wait_floor so that the polls follow each other quickly.
return function(req)
  if req.method ~= "POST" or req.path ~= "/lcmcoord/v1/coordinations" or type(req.json) ~= "table" then
    return
  end
  local n = tonumber(tostring(req.json.coordinationActionName):match("(%d+)$"))
  if n then
    return em.accept(req.json, {polls = (n * 7) % 5})
  end
end
