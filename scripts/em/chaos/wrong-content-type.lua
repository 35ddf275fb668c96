-- a valid 201 LcmCoord labelled Content-Type: text/plain
-- A sloppy EM (or a proxy rewriting headers) labels good JSON as text. The body is what
-- counts: a client should still accept it.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" and req.json then
    local coord = em.lcmcoord(req.json)
    return 201, { ["Content-Type"] = "text/plain", Location = coord._links.self.href }, coord
  end
end
