-- EM scenario for the client suites: POST /coordinations answers 201 with an LcmCoord that
-- lacks the mandatory coordinationResult.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    local doc = em.lcmcoord(req.json)
    doc.coordinationResult = nil
    return 201, {}, doc
  end
end
