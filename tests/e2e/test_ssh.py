"""End-to-end: lcmcoord.ssh against a real OpenSSH sshd, through `lcmcoord run` scripts.

The suite starts Debian's /usr/sbin/sshd on a free 127.0.0.1 port with its own config,
host key and authorized_keys in a temporary directory, and logs in as the current user
with a key. Password authentication needs an account with a known password: when the
suite runs as root it creates a throwaway system user for that and deletes it afterwards;
otherwise those tests are skipped. Every test that handles a password or a passphrase
checks that it never reaches stdout or stderr, even at -vv.
"""

import json
import os
import pwd
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import harness

SSHD = "/usr/sbin/sshd"
IS_ROOT = os.geteuid() == 0
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "vnfc_param.json")
DRAIN_SCRIPT = os.path.join(harness.SOURCE_DIR, "scripts", "coordinate_vnf_drain.lua")
PASSPHRASE = "canary-passphrase-" + secrets.token_hex(4)
PASSWORD = "canary-password-" + secrets.token_hex(4)
WRONG_PASSWORD = "canary-wrong-" + secrets.token_hex(4)

# Connects with p.connect, runs p.commands, prints what happened as one JSON object.
DRIVER = r"""
local lcmcoord = require "lcmcoord"
local p = ...
local function failure(err)
  return {kind = err.kind, message = err.message, stdout = err.stdout, stderr = err.stderr}
end
local s, err = lcmcoord.ssh.connect(p.connect)
if not s then
  print(lcmcoord.json.encode{connect_error = failure(err)})
  return
end
local out = {session = tostring(s), host_key = s:host_key_sha256(), results = {}}
for i, c in ipairs(p.commands or {}) do
  local r, e = s:exec(c.cmd, c.timeout)
  if r then
    -- JSON text carries no NUL (docs/lua-api.md): output holding one is described instead.
    out.results[i] = {status = r.status, signal = r.signal,
                      stderr = not r.stderr:find("\0", 1, true) and r.stderr or nil,
                      stdout = #r.stdout <= 4096 and r.stdout or nil,
                      stdout_length = #r.stdout, stderr_length = #r.stderr,
                      stdout_zeros = r.stdout == string.rep("\0", #r.stdout),
                      stdout_truncated = r.stdout_truncated,
                      stderr_truncated = r.stderr_truncated}
  else
    out.results[i] = {error = failure(e)}
  end
end
s:close()
out.closed = tostring(s)
print(lcmcoord.json.encode(out))
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path, passphrase=""):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "lcmc-test",
                    "-f", path], check=True, capture_output=True)


def fingerprint(pub_path):
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", pub_path], check=True,
                         capture_output=True, text=True).stdout
    return out.split()[1]


def public_key(pub_path):
    with open(pub_path, encoding="ascii") as f:
        kind, blob = f.read().split()[:2]
    return f"{kind} {blob}"


class Sshd:
    """A running sshd on 127.0.0.1 with a free port, configured in `directory`."""

    def __init__(self, directory):
        self.dir = directory
        self.host_key = os.path.join(directory, "host_key")
        keygen(self.host_key)
        self.fingerprint = fingerprint(self.host_key + ".pub")
        self.client_key = os.path.join(directory, "client_key")
        keygen(self.client_key)
        self.encrypted_key = os.path.join(directory, "client_key_encrypted")
        keygen(self.encrypted_key, PASSPHRASE)
        # Another key, for "a different host key" cases.
        self.other_key = os.path.join(directory, "other_key")
        keygen(self.other_key)
        self.authorized_keys = os.path.join(directory, "authorized_keys")
        with open(self.authorized_keys, "w", encoding="ascii") as f:
            for key in (self.client_key, self.encrypted_key):
                f.write(public_key(key + ".pub") + "\n")
        self.log_path = os.path.join(directory, "sshd.log")
        self.proc = None
        self.port = None

    def start(self, timeout=10.0):
        # The port is free when chosen but could be taken before sshd binds it: retry then.
        for _ in range(3):
            self.port = free_port()
            config = os.path.join(self.dir, "sshd_config")
            with open(config, "w", encoding="ascii") as f:
                f.write(f"ListenAddress 127.0.0.1:{self.port}\n"
                        f"HostKey {self.host_key}\n"
                        "PidFile none\n"
                        f"AuthorizedKeysFile {self.authorized_keys}\n"
                        "PasswordAuthentication yes\n"
                        "PubkeyAuthentication yes\n"
                        "KbdInteractiveAuthentication no\n"
                        "UsePAM no\n"
                        "StrictModes no\n"
                        "PermitRootLogin yes\n"
                        "LogLevel VERBOSE\n")
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", config],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            log.close()
            if harness.wait_for(self._ready_or_exited, timeout=timeout, what="sshd") == "ready":
                return
            self.proc.wait()
        raise AssertionError(f"sshd did not start: {self.log()}")

    def _ready_or_exited(self):
        if self.proc.poll() is not None:
            return "exited"
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return "ready"
        except OSError:
            return None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10 * harness.TIME_FACTOR)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self):
        with open(self.log_path, encoding="latin-1") as f:
            return f.read()

    def known_hosts_line(self, key_path=None, host=None):
        host = host or f"[127.0.0.1]:{self.port}"
        return f"{host} {public_key((key_path or self.host_key) + '.pub')}\n"


def setUpModule():
    global SERVER, TMP, PASSWORD_USER
    if not os.path.exists(SSHD):
        raise unittest.SkipTest(f"{SSHD} is not installed (openssh-server)")
    if not os.path.isdir("/run/sshd"):
        if not IS_ROOT:
            raise unittest.SkipTest("sshd needs /run/sshd, which only root can create")
        os.makedirs("/run/sshd", mode=0o755)
    TMP = tempfile.mkdtemp(prefix="lcmc-ssh-")
    # The password user reaches its home and the drain tests' files through here.
    os.chmod(TMP, 0o711)
    PASSWORD_USER = None
    SERVER = Sshd(TMP)
    SERVER.start()
    if IS_ROOT:
        name = "lcmcssh" + secrets.token_hex(4)
        home = os.path.join(TMP, "home-" + name)
        subprocess.run(["useradd", "--system", "-M", "-d", home, "-s", "/bin/sh", name],
                       check=True, capture_output=True)
        PASSWORD_USER = name
        os.mkdir(home, 0o700)
        user = pwd.getpwnam(name)
        os.chown(home, user.pw_uid, user.pw_gid)
        subprocess.run(["chpasswd"], input=f"{name}:{PASSWORD}\n", text=True, check=True,
                       capture_output=True)


def tearDownModule():
    SERVER.stop()
    if PASSWORD_USER is not None:
        subprocess.run(["userdel", PASSWORD_USER], capture_output=True)
    shutil.rmtree(TMP, ignore_errors=True)


def current_user():
    return pwd.getpwuid(os.geteuid()).pw_name


def need_password_user(test):
    return unittest.skipUnless(IS_ROOT, "password authentication needs a throwaway user, "
                               "which only root can create")(test)


class SshTestCase(harness.TestCase):
    def connect_options(self, **overrides):
        options = {"host": "127.0.0.1", "port": SERVER.port, "user": current_user(),
                   "key": SERVER.client_key, "host_key_sha256": SERVER.fingerprint,
                   "timeout": 10}
        options.update(overrides)
        return {k: v for k, v in options.items() if v is not None}

    def write(self, name, text):
        path = os.path.join(TMP, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def run_script(self, script_text, params, *flags, timeout=60, env=None):
        path = self.write(f"script-{secrets.token_hex(4)}.lua", script_text)
        # --any-params: these scripts take their own parameters, not a VNFC's.
        return harness.run_lcmcoord("run", "--any-params", *flags, path, stdin=json.dumps(params),
                                    timeout=timeout, env=env)

    def drive(self, commands=(), flags=("-vv",), env=None, **options):
        """Runs the driver; returns (parsed stdout, CompletedProcess)."""
        done = self.run_script(DRIVER, {"connect": self.connect_options(**options),
                                        "commands": list(commands)}, *flags, env=env)
        self.assertEqual(done.returncode, 0, done.stderr)
        return json.loads(done.stdout), done

    def assertNoSecret(self, done, *secret_values):
        for secret in secret_values:
            self.assertNotIn(secret, done.stdout)
            self.assertNotIn(secret, done.stderr)

    def results(self, out):
        results = out["results"]
        return results if isinstance(results, list) else []


class Commands(SshTestCase):
    def test_exec_reports_exit_status_stdout_and_stderr(self):
        out, _ = self.drive([{"cmd": "echo out; echo err >&2; exit 3"}])
        self.assertEqual(out["session"],
                         f"lcmcoord.ssh ({current_user()}@127.0.0.1:{SERVER.port})")
        self.assertEqual(out["host_key"], SERVER.fingerprint)
        self.assertEqual(out["closed"], "lcmcoord.ssh (closed)")
        [r] = self.results(out)
        self.assertEqual((r["status"], r["stdout"], r["stderr"]), (3, "out\n", "err\n"))
        self.assertFalse(r["stdout_truncated"])

    def test_several_commands_run_on_one_session(self):
        out, _ = self.drive([{"cmd": "echo one"}, {"cmd": "true"}, {"cmd": "echo three"}])
        self.assertEqual([r["stdout"] for r in self.results(out)], ["one\n", "", "three\n"])

    def test_a_command_killed_by_a_signal_reports_it(self):
        out, _ = self.drive([{"cmd": "kill -KILL $$"}])
        [r] = self.results(out)
        self.assertEqual((r["status"], r.get("signal")), (-1, "KILL"))

    def test_output_over_the_cap_is_cut_and_marked(self):
        out, _ = self.drive([{"cmd": "head -c 3000000 /dev/zero; echo done >&2"}])
        [r] = self.results(out)
        self.assertEqual(r["status"], 0)
        self.assertEqual(r["stdout_length"], 1024 * 1024)
        self.assertTrue(r["stdout_zeros"])
        self.assertTrue(r["stdout_truncated"])
        self.assertEqual((r["stderr"], r["stderr_truncated"]), ("done\n", False))

    def test_max_output_applies_to_stderr_too(self):
        out, _ = self.drive([{"cmd": "head -c 500 /dev/zero >&2; echo fine"}], max_output=100)
        [r] = self.results(out)
        self.assertEqual((r["stderr_length"], r["stderr_truncated"]), (100, True))
        self.assertEqual((r["stdout"], r["stdout_truncated"]), ("fine\n", False))

    def test_a_command_past_its_deadline_fails_promptly(self):
        started = time.monotonic()
        # Room for sshd to start the command's shell, so that "started" is surely written
        # before the deadline: that takes over 3 s on a 2-core machine at load 10.
        deadline = 4 * harness.TIME_FACTOR
        out, _ = self.drive([{"cmd": "echo started; sleep 30", "timeout": deadline},
                             {"cmd": "echo after"}])
        elapsed = time.monotonic() - started
        first, second = self.results(out)
        self.assertEqual(first["error"]["kind"], "deadline", first)
        self.assertIn(f"{deadline:g} s", first["error"]["message"])
        # What the command wrote before the deadline comes with the error.
        self.assertEqual(first["error"]["stdout"], "started\n")
        # The session is not reused after an abandoned command.
        self.assertEqual(second["error"]["kind"], "transport")
        self.assertIn("connect again", second["error"]["message"])
        self.assertLess(elapsed, deadline + 2.5 * harness.TIME_FACTOR)

    def test_sigterm_during_a_command_exits_143_promptly(self):
        script = self.write("long.lua", """
            local lcmcoord = require "lcmcoord"
            local p = ...
            local s = assert(lcmcoord.ssh.connect(p.connect))
            assert(s:exec("sleep 30"))
            print("not reached")
        """)
        params = json.dumps({"connect": self.connect_options()})
        proc = subprocess.Popen([harness.LCMCOORD_BIN, "run", "--any-params", "-vv", script],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        proc.stdin.write(params.encode())
        proc.stdin.close()
        # Raw reads, not readline: a buffered reader could hold the line we wait for while
        # select() waits for more bytes that only come when the command ends.
        seen = b""
        sel = selectors.DefaultSelector()
        sel.register(proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + 15
        while b"running: sleep 30" not in seen:
            if time.monotonic() > deadline or not sel.select(deadline - time.monotonic()):
                proc.kill()
                self.fail(f"the command did not start: {seen!r}")
            chunk = os.read(proc.stderr.fileno(), 65536)
            if not chunk:
                proc.kill()
                self.fail(f"lcmcoord run ended early: {seen!r}")
            seen += chunk
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=5 * harness.TIME_FACTOR)
        except subprocess.TimeoutExpired:
            proc.kill()
            self.fail("lcmcoord run did not stop after SIGTERM")
        took = time.monotonic() - sent
        rest = proc.stderr.read().decode("utf-8", "replace")
        proc.stderr.close()
        self.assertEqual(rc, 143, rest)
        self.assertLess(took, 2.0 * harness.TIME_FACTOR)
        self.assertIn("interrupted by SIGTERM", rest)


class Authentication(SshTestCase):
    def test_key_with_a_passphrase(self):
        out, done = self.drive([{"cmd": "echo ok"}], key=SERVER.encrypted_key,
                               key_password=PASSPHRASE)
        self.assertEqual(self.results(out)[0]["stdout"], "ok\n")
        self.assertNoSecret(done, PASSPHRASE)

    def test_key_with_a_wrong_passphrase_is_an_auth_error(self):
        out, done = self.drive(key=SERVER.encrypted_key, key_password=WRONG_PASSWORD)
        self.assertEqual(out["connect_error"]["kind"], "auth")
        self.assertIn("passphrase", out["connect_error"]["message"])
        self.assertNoSecret(done, WRONG_PASSWORD, PASSPHRASE)

    def test_a_key_the_server_does_not_know_is_refused(self):
        out, _ = self.drive(key=SERVER.other_key)
        self.assertEqual(out["connect_error"]["kind"], "auth")
        self.assertIn("refused the key", out["connect_error"]["message"])

    @need_password_user
    def test_password(self):
        out, done = self.drive([{"cmd": "id -un"}], user=PASSWORD_USER, key=None,
                               password=PASSWORD)
        self.assertEqual(self.results(out)[0]["stdout"], PASSWORD_USER + "\n")
        self.assertNoSecret(done, PASSWORD)

    def test_wrong_password_is_an_auth_error_without_the_password(self):
        user = PASSWORD_USER or current_user()
        out, done = self.drive(user=user, key=None, password=WRONG_PASSWORD)
        err = out["connect_error"]
        self.assertEqual(err["kind"], "auth")
        self.assertIn("refused the password", err["message"])
        self.assertIn(f"{user}@127.0.0.1:{SERVER.port}", err["message"])
        self.assertNoSecret(done, WRONG_PASSWORD)

    def test_unusable_options_raise_a_usage_error(self):
        done = self.run_script(DRIVER, {"connect": self.connect_options(
            key=os.path.join(TMP, "no-such-key"))})
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("no-such-key", done.stderr)


class HostKeys(SshTestCase):
    def test_a_pin_in_every_form_ssh_keygen_users_paste(self):
        raw = SERVER.fingerprint[len("SHA256:"):]
        for pin in (SERVER.fingerprint, raw, raw + "=", "sha256:" + raw):
            with self.subTest(pin=pin):
                out, _ = self.drive([{"cmd": "echo ok"}], host_key_sha256=pin)
                self.assertEqual(self.results(out)[0]["stdout"], "ok\n")

    def test_a_wrong_pin_is_refused_naming_both_fingerprints(self):
        other = fingerprint(SERVER.other_key + ".pub")
        log_before = len(SERVER.log())
        out, done = self.drive(host_key_sha256=other, user=PASSWORD_USER or current_user(),
                               key=None, password=PASSWORD, accept_unknown_host_key=True)
        err = out["connect_error"]
        self.assertEqual(err["kind"], "auth")
        self.assertIn("host key mismatch", err["message"])
        self.assertIn(SERVER.fingerprint, err["message"])
        self.assertIn(other, err["message"])
        self.assertIn(f"127.0.0.1:{SERVER.port}", err["message"])
        # The password never went to the unverified server.
        harness.wait_for(lambda: "Disconnected from" in SERVER.log()[log_before:],
                         what="sshd to log the disconnection")
        self.assertNotIn("password", SERVER.log()[log_before:])
        self.assertNoSecret(done, PASSWORD)

    def test_known_hosts_with_the_host(self):
        path = self.write("known_hosts_ok", SERVER.known_hosts_line())
        out, _ = self.drive([{"cmd": "echo ok"}], host_key_sha256=None, known_hosts=path)
        self.assertEqual(self.results(out)[0]["stdout"], "ok\n")

    def test_known_hosts_with_hashed_entries(self):
        path = self.write("known_hosts_hashed",
                          "# a comment\n" + SERVER.known_hosts_line(SERVER.other_key,
                                                                    "[192.0.2.1]:22") +
                          SERVER.known_hosts_line())
        subprocess.run(["ssh-keygen", "-H", "-f", path], check=True, capture_output=True)
        with open(path, encoding="ascii") as f:
            self.assertNotIn("127.0.0.1", f.read())
        out, _ = self.drive([{"cmd": "echo ok"}], host_key_sha256=None, known_hosts=path)
        self.assertEqual(self.results(out)[0]["stdout"], "ok\n")

    def test_an_unknown_host_key_is_refused_by_default(self):
        path = self.write("known_hosts_other",
                          SERVER.known_hosts_line(SERVER.other_key, "[192.0.2.1]:22"))
        out, _ = self.drive(host_key_sha256=None, known_hosts=path)
        err = out["connect_error"]
        self.assertEqual(err["kind"], "auth")
        self.assertIn("unknown host key", err["message"])
        self.assertIn(SERVER.fingerprint, err["message"])
        self.assertIn(path, err["message"])

    def test_without_pin_or_file_the_home_known_hosts_is_used(self):
        home = os.path.join(TMP, "home")
        os.makedirs(os.path.join(home, ".ssh"), exist_ok=True)
        out, _ = self.drive(host_key_sha256=None, env={"HOME": home})
        self.assertEqual(out["connect_error"]["kind"], "auth")
        self.assertIn(os.path.join(home, ".ssh", "known_hosts"),
                      out["connect_error"]["message"])
        with open(os.path.join(home, ".ssh", "known_hosts"), "w", encoding="ascii") as f:
            f.write(SERVER.known_hosts_line())
        out, _ = self.drive([{"cmd": "echo ok"}], host_key_sha256=None, env={"HOME": home})
        self.assertEqual(self.results(out)[0]["stdout"], "ok\n")

    def test_an_unknown_host_key_is_accepted_with_the_option_and_a_warning(self):
        path = self.write("known_hosts_empty", "")
        out, done = self.drive([{"cmd": "echo ok"}], flags=(), host_key_sha256=None,
                               known_hosts=path, accept_unknown_host_key=True)
        self.assertEqual(self.results(out)[0]["stdout"], "ok\n")
        warnings = [line for line in done.stderr.splitlines()
                    if line.startswith("lcmcoord: warning: ")]
        self.assertEqual(len(warnings), 1, done.stderr)
        self.assertIn("accepting the unknown host key", warnings[0])
        self.assertIn(SERVER.fingerprint, warnings[0])

    def test_a_known_hosts_mismatch_is_refused_even_with_accept_unknown(self):
        path = self.write("known_hosts_wrong", SERVER.known_hosts_line(SERVER.other_key))
        out, _ = self.drive(host_key_sha256=None, known_hosts=path,
                            accept_unknown_host_key=True)
        err = out["connect_error"]
        self.assertEqual(err["kind"], "auth")
        self.assertIn("host key mismatch", err["message"])
        self.assertIn(SERVER.fingerprint, err["message"])
        self.assertIn(fingerprint(SERVER.other_key + ".pub"), err["message"])

    def test_a_revoked_key_is_refused(self):
        path = self.write("known_hosts_revoked",
                          "@revoked " + SERVER.known_hosts_line() + SERVER.known_hosts_line())
        out, _ = self.drive(host_key_sha256=None, known_hosts=path)
        self.assertEqual(out["connect_error"]["kind"], "auth")
        self.assertIn("revoked", out["connect_error"]["message"])


class Connections(SshTestCase):
    def test_a_closed_port_is_a_transport_error(self):
        out, _ = self.drive(port=free_port())
        self.assertEqual(out["connect_error"]["kind"], "transport")
        self.assertIn("127.0.0.1", out["connect_error"]["message"])

    def test_a_failed_connect_under_assert_exits_4_with_one_line(self):
        script = """
            local p = ...
            assert(require("lcmcoord").ssh.connect(p.connect))
        """
        done = self.run_script(script, {"connect": self.connect_options(port=free_port())})
        self.assertEqual(done.returncode, 4, done.stderr)
        self.assertIn("cannot connect to", self.assertOneLine(done.stderr))

    def test_a_server_that_never_answers_hits_the_connect_deadline(self):
        # A listening socket that never accepts: TCP connects, the SSH banner never comes.
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(1)
            started = time.monotonic()
            out, _ = self.drive(port=silent.getsockname()[1], timeout=1)
            self.assertLess(time.monotonic() - started, 3.5 * harness.TIME_FACTOR)
        self.assertEqual(out["connect_error"]["kind"], "deadline")


class LuaSurface(SshTestCase):
    def test_bad_arguments_raise_and_closed_sessions_refuse_use(self):
        script = r"""
            local lcmcoord = require "lcmcoord"
            local ssh = lcmcoord.ssh
            local p = ...
            -- Each call is a plain (not tail) call, so that Lua names the function.
            local function err(f)
              local ok, e = pcall(f)
              assert(not ok, "expected an error")
              return tostring(e)
            end
            local out = {}
            out.not_table = err(function() local r = ssh.connect("host"); return r end)
            out.no_host = err(function()
              local r = ssh.connect{user = "u", password = "x"}; return r end)
            out.bad_port = err(function()
              local r = ssh.connect{host = "h", user = "u", password = "x", port = 70000}
              return r
            end)
            out.unknown = err(function()
              local r = ssh.connect{host = "h", user = "u", password = "x", hots = 1}
              return r
            end)
            out.no_secret = err(function() local r = ssh.connect{host = "h", user = "u"}; return r end)
            out.bad_pin = err(function()
              local r = ssh.connect{host = "h", user = "u", password = "x",
                                    host_key_sha256 = "nope"}
              return r
            end)
            local kept
            do
              local s <close> = assert(ssh.connect(p.connect))
              out.open = tostring(s)
              out.bad_cmd = err(function() local r = s:exec({}); return r end)
              out.bad_timeout = err(function() local r = s:exec("true", -1); return r end)
              kept = s
            end
            out.closed = tostring(kept)
            out.use_closed = err(function() local r = kept:exec("true"); return r end)
            kept:close()
            print(lcmcoord.json.encode(out))
        """
        done = self.run_script(script, {"connect": self.connect_options()})
        self.assertEqual(done.returncode, 0, done.stderr)
        out = json.loads(done.stdout)
        self.assertIn("bad argument #1 to 'connect' (table expected, got string)",
                      out["not_table"])
        self.assertIn("bad argument #1 to 'connect' (field 'host': non-empty string expected, "
                      "got nil)", out["no_host"])
        self.assertIn("field 'port'", out["bad_port"])
        self.assertIn("unknown field 'hots'", out["unknown"])
        self.assertIn("'password' or 'key'", out["no_secret"])
        self.assertIn("host_key_sha256", out["bad_pin"])
        self.assertIn("bad argument #1 to 'exec' (string expected, got table)", out["bad_cmd"])
        self.assertIn("bad argument #2 to 'exec'", out["bad_timeout"])
        self.assertEqual(out["open"], f"lcmcoord.ssh ({current_user()}@127.0.0.1:{SERVER.port})")
        self.assertEqual(out["closed"], "lcmcoord.ssh (closed)")
        self.assertIn("attempt to use a closed ssh session", out["use_closed"])


def drain_params(em_url, workdir, **settings):
    with open(FIXTURE, encoding="utf-8") as f:
        param = json.load(f)
    param.update({"endpoint": em_url, "ssh_ip": "127.0.0.1", "ssh_port": SERVER.port,
                  "username": PASSWORD_USER, "password": PASSWORD,
                  "authentication": None, "ssh_host_key_sha256": SERVER.fingerprint,
                  "ssh_drain_command": f"echo drained > {workdir}/drained; echo drained",
                  "ssh_health_interval": 0.1})
    param.update(settings)
    return param


@need_password_user
class DrainScript(SshTestCase):
    """scripts/coordinate_vnf_drain.lua against `lcmcoord em` and the test sshd."""

    def workdir(self):
        path = tempfile.mkdtemp(prefix="drain-", dir=TMP)
        user = pwd.getpwnam(PASSWORD_USER)
        os.chown(path, user.pw_uid, user.pw_gid)
        return path

    def health_after(self, workdir, successes_from):
        # Fails until the `successes_from`-th call, counting calls in a file.
        return (f"n=$(cat {workdir}/count 2>/dev/null || echo 0); n=$((n+1)); "
                f"echo $n > {workdir}/count; "
                f"if [ $n -ge {successes_from} ]; then echo healthy; "
                f"else echo not yet >&2; exit 1; fi")

    def test_continue_drains_and_retries_the_health_check(self):
        work = self.workdir()
        with harness.EM() as em:
            params = drain_params(em.url, work,
                                  ssh_health_command=self.health_after(work, 3))
            done = harness.run_lcmcoord("run", "-vv", DRAIN_SCRIPT, stdin=json.dumps(params))
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertEqual(len(em.journal()), 1)
        with open(os.path.join(work, "drained"), encoding="ascii") as f:
            self.assertEqual(f.read(), "drained\n")
        with open(os.path.join(work, "count"), encoding="ascii") as f:
            self.assertEqual(f.read(), "3\n")
        self.assertEqual(done.stderr.count("health check"), 2, done.stderr)
        self.assertNoSecret(done, PASSWORD)

    def test_a_vnfc_that_stays_unhealthy_fails_with_one_line(self):
        work = self.workdir()
        with harness.EM() as em:
            params = drain_params(em.url, work, ssh_health_command="echo sick >&2; exit 7",
                                  ssh_health_attempts=3)
            done = harness.run_lcmcoord("run", DRAIN_SCRIPT, stdin=json.dumps(params))
        self.assertNotEqual(done.returncode, 0)
        line = self.assertOneLine(done.stderr)
        self.assertIn("still unhealthy after 3 health checks", line)
        self.assertIn("sick", line)

    def test_no_host_key_setting_fails_before_any_ssh(self):
        work = self.workdir()
        with harness.EM() as em:
            params = drain_params(em.url, work, ssh_host_key_sha256=None)
            done = harness.run_lcmcoord("run", DRAIN_SCRIPT, stdin=json.dumps(params))
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("ssh_host_key_sha256", self.assertOneLine(done.stderr))
        self.assertFalse(os.path.exists(os.path.join(work, "drained")))


if __name__ == "__main__":
    unittest.main()
