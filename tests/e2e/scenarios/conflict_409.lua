-- EM scenario for the client suites: every POST /coordinations is refused with 409 and a
-- ProblemDetails sent as "application/problem+json; charset=utf-8", the variant Tacker's
-- error path mishandles. Other requests fall through to the simulator's defaults.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    return 409, {["Content-Type"] = "application/problem+json; charset=utf-8"},
      em.problem(409, "VNFC VDU2-0a1b2c3d is still draining")
  end
end
