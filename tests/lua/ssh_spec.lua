-- Specs of lcmcoord.ssh that need no SSH server, under a stock lua5.4 loading the built
-- module: argument checking, failures before any SSH is spoken (a refused connection, an
-- unreadable key file) and the error values they give. The suite against a real sshd is
-- tests/e2e/test_ssh.py.
local lcmcoord = require "lcmcoord"

-- Nothing listens on port 1 of the loopback: connections are refused at once.
local function options(overrides)
  local o = {host = "127.0.0.1", port = 1, user = "nobody", password = "canary-secret",
             host_key_sha256 = "SHA256:NGN/to15B+0XdDtbYkbfDa4zj/oWFRlCBAdqSCP4FeU",
             timeout = 5}
  for k, v in pairs(overrides or {}) do
    o[k] = v
  end
  return o
end

describe("lcmcoord.ssh.connect", function()
  it("is part of the module", function()
    assert.is_function(lcmcoord.ssh.connect)
  end)

  it("raises on bad arguments, in Lua's words", function()
    assert.has_error(function() lcmcoord.ssh.connect() end,
                     "bad argument #1 to 'connect' (table expected, got no value)")
    assert.has_error(function() lcmcoord.ssh.connect(options{host = 42}) end,
                     "bad argument #1 to 'connect' (field 'host': string expected, got number)")
    assert.has_error(function() lcmcoord.ssh.connect(options{timout = 3}) end,
                     "bad argument #1 to 'connect' (unknown field 'timout')")
    assert.has_error(function() lcmcoord.ssh.connect(options{password = false}) end,
                     "bad argument #1 to 'connect' (field 'password': string expected, got boolean)")
    assert.has_error(function() lcmcoord.ssh.connect(options{timeout = 0}) end,
                     "bad argument #1 to 'connect' (field 'timeout': positive number of seconds up to 10000000 expected, got number)")
    assert.has_error(function()
      lcmcoord.ssh.connect(options{known_hosts = "/etc/ssh/ssh_known_hosts"})
    end, "bad argument #1 to 'connect' (fields 'known_hosts' and 'host_key_sha256' exclude each other)")
  end)

  it("raises a usage error value for options the runtime refuses", function()
    local ok, err = pcall(lcmcoord.ssh.connect, options{password = lcmcoord.null,
                                                         key = "/nonexistent/id_ed25519"})
    assert.is_false(ok)
    assert.is_true(lcmcoord.is_error(err))
    assert.equals("usage", err.kind)
    assert.matches("/nonexistent/id_ed25519", err.message, 1, true)
  end)

  it("returns nil and a transport error for a refused connection, without the password", function()
    local s, err = lcmcoord.ssh.connect(options())
    assert.is_nil(s)
    assert.is_true(lcmcoord.is_error(err))
    assert.equals("transport", err.kind)
    assert.matches("nobody@127.0.0.1:1", tostring(err), 1, true)
    assert.is_nil(tostring(err):find("canary-secret", 1, true))
  end)
end)
