-- 409 ProblemDetails with a title but no detail (which SOL 013 requires)
-- The client has to say something useful with what there is: the status and the title.
return function(req)
  if req.method == "POST" and req.path == "/lcmcoord/v1/coordinations" then
    return 409, nil, { title = "Coordination refused by chaos", status = 409 }
  end
end
