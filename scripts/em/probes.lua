-- Paths under /probe/ that misbehave in set ways, for retry policies to meet:
--   /probe/busy-twice  503 (Retry-After: 1) twice, then 200
--   /probe/rate-date   429 with an HTTP-date Retry-After 2 s ahead once, then 200
--   /probe/bad         always 400
--   /probe/busy        always 503 (Retry-After: 1)
-- Everything else falls through to the simulator's defaults.
return function(req)
  local counts = em.state
  counts[req.path] = (counts[req.path] or 0) + 1
  local n = counts[req.path]
  local json = {["Content-Type"] = "application/json"}
  if req.path == "/probe/busy-twice" then
    if n <= 2 then return 503, {["Retry-After"] = "1"}, em.problem(503, "busy " .. n) end
    return 200, json, {ok = true, attempts = n}
  elseif req.path == "/probe/rate-date" then
    if n == 1 then return 429, {["Retry-After"] = em.http_date(2)}, em.problem(429, "slow down") end
    return 200, json, {ok = true, attempts = n}
  elseif req.path == "/probe/bad" then
    return 400, {}, em.problem(400, "no such thing")
  elseif req.path == "/probe/busy" then
    return 503, {["Retry-After"] = "1"}, em.problem(503, "always busy")
  end
end
