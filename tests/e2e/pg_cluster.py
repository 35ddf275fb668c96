"""A throw-away PostgreSQL cluster for the tests of `lcmcoord serve`'s store: Debian's
postgresql binaries (initdb, pg_ctl), a cluster in a temporary directory, listening only on a
unix socket in that directory (on a port number chosen free, which names the socket), trust
authentication for the test user, stopped and removed at the end.

PostgreSQL refuses to run as root: when the harness is root (as in CI), the cluster runs as
the unprivileged user `nobody` (setpriv), owning its temporary directory.

Two ways to use it:
  - from Python (the e2e suites):   with PgCluster() as pg: ... pg.url ...
  - as a ctest fixture (FIXTURES_SETUP / FIXTURES_CLEANUP), from the command line:
        pg_cluster.py start STATE_FILE    starts a cluster, writes STATE_FILE (key=value lines:
                                          url, dir, socket_dir, port, user, bin) and returns
        pg_cluster.py stop STATE_FILE     stops it and removes its directory
        pg_cluster.py restart STATE_FILE  restarts it (same socket, same data)
        pg_cluster.py pause STATE_FILE / resume STATE_FILE   stop / start without removing

Missing binaries are an error with a clear message, never a silent skip.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile

USER = "lcmcoord"
UNPRIVILEGED = "nobody"


def find_bin_dir():
    """The directory of initdb/pg_ctl: $LCMCOORD_PG_BIN, else the newest Debian install."""
    explicit = os.environ.get("LCMCOORD_PG_BIN")
    candidates = [explicit] if explicit else sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
        reverse=True)
    for directory in candidates:
        if directory and os.access(os.path.join(directory, "initdb"), os.X_OK) and \
                os.access(os.path.join(directory, "pg_ctl"), os.X_OK):
            return directory
    raise RuntimeError(
        "pg_cluster: PostgreSQL server binaries (initdb, pg_ctl) not found in "
        + (explicit or "/usr/lib/postgresql/*/bin")
        + ": install Debian's postgresql package (scripts/setup.sh) or set LCMCOORD_PG_BIN")


def free_port():
    """A port number nobody listens on now (it only names the unix socket: no TCP)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    def __init__(self, bin_dir=None, state=None):
        self.bin_dir = bin_dir or find_bin_dir()
        self.dir = None
        self.port = None
        self._as_user = []
        if state:
            self.__dict__.update({k: state[k] for k in ("dir", "port")})
            self.port = int(self.port)
            self.bin_dir = state.get("bin", self.bin_dir)
            self._pick_user()

    # ---- what tests use ------------------------------------------------------------------
    @property
    def socket_dir(self):
        return self.dir

    @property
    def url(self):
        return self.database_url("postgres")

    def database_url(self, dbname):
        return f"postgresql://{USER}@/{dbname}?host={self.dir}&port={self.port}"

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="lcmcoord-pg-")
        os.chmod(self.dir, 0o700)
        self._pick_user()
        if self._as_user:
            entry = pwd.getpwnam(UNPRIVILEGED)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self.port = free_port()
        try:
            self._run("initdb", "-D", self._data(), "-U", USER, "--auth=trust", "-E", "UTF8",
                      "--locale=C", "--no-instructions", "--no-sync")
            self.resume()
        except BaseException:
            self._remove()
            raise
        return self

    def resume(self):
        """Starts the (stopped) cluster on its socket; waits until it accepts connections."""
        options = f"-k {self.dir} -p {self.port} -c listen_addresses=''"
        self._run("pg_ctl", "-D", self._data(), "-l", os.path.join(self.dir, "server.log"),
                  "-w", "-t", "60", "-o", options, "start")

    def pause(self):
        """Stops the server (fast: connections are cut), keeping the data."""
        self._run("pg_ctl", "-D", self._data(), "-m", "fast", "-w", "-t", "60", "stop")

    def restart(self):
        self.pause()
        self.resume()

    def create_database(self, name):
        self._run("createdb", "-h", self.dir, "-p", str(self.port), "-U", USER, name)
        return self.database_url(name)

    def stop(self):
        if not self.dir:
            return
        try:
            if os.path.exists(os.path.join(self._data(), "postmaster.pid")):
                self.pause()
        finally:
            self._remove()

    def server_log(self):
        try:
            with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def state_lines(self):
        return "".join(f"{k}={v}\n" for k, v in (
            ("url", self.url), ("dir", self.dir), ("socket_dir", self.dir),
            ("port", self.port), ("user", USER), ("bin", self.bin_dir)))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- plumbing ------------------------------------------------------------------------
    def _pick_user(self):
        self._as_user = []
        if os.geteuid() == 0:
            entry = pwd.getpwnam(UNPRIVILEGED)
            self._as_user = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}",
                             "--clear-groups", "--"]

    def _data(self):
        return os.path.join(self.dir, "data")

    def _run(self, program, *args):
        command = self._as_user + [os.path.join(self.bin_dir, program), *args]
        done = subprocess.run(command, cwd=self.dir, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=120, env=dict(os.environ, LC_ALL="C"))
        if done.returncode != 0:
            log = self.server_log()[-2000:] if self.dir else ""
            raise RuntimeError(f"pg_cluster: {program} failed ({done.returncode}): "
                               f"{done.stdout.strip()}\n{log}")

    def _remove(self):
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def read_state(path):
    with open(path) as f:
        return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)


def main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop", "restart", "pause", "resume"):
        print("usage: pg_cluster.py start|stop|restart|pause|resume STATE_FILE", file=sys.stderr)
        return 2
    action, path = argv[1], argv[2]
    try:
        if action == "start":
            cluster = PgCluster().start()
            with open(path + ".tmp", "w") as f:
                f.write(cluster.state_lines())
            os.replace(path + ".tmp", path)
            print(f"pg_cluster: started {cluster.url}")
            return 0
        if not os.path.exists(path):
            if action == "stop":
                return 0  # nothing was started (the setup failed): nothing to clean
            print(f"pg_cluster: no state file {path}", file=sys.stderr)
            return 1
        cluster = PgCluster(state=read_state(path))
        if action == "stop":
            cluster.stop()
            os.unlink(path)
        else:
            getattr(cluster, action)()
        return 0
    except (RuntimeError, OSError, KeyError, subprocess.TimeoutExpired) as e:
        print(str(e).splitlines()[0] if str(e) else repr(e), file=sys.stderr)
        if len(str(e).splitlines()) > 1:
            print("\n".join(str(e).splitlines()[1:]), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
