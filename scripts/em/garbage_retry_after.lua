-- Answers every POST with 503 and a Retry-After that is neither delay-seconds nor an
-- HTTP-date, to check that a client treats it as absent (or fails cleanly) instead of
-- waiting forever or crashing.
-- Run: lcmcoord em --scenario scripts/em/garbage_retry_after.lua
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    return 503, { ["Retry-After"] = "soon-ish, maybe" }, em.problem(503, "EM busy")
  end
end
