"""The throw-away PostgreSQL cluster the store's tests and the serve e2e suites rely on
(pg_cluster.py): it really starts, answers on its socket as the test user, runs unprivileged
when the harness is root, leaves nothing behind, and fails loudly (never skips) when the
PostgreSQL binaries are missing."""

import os
import subprocess
import sys
import tempfile
import unittest

import pg_cluster

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "pg_cluster.py")


def psql(cluster, sql):
    done = subprocess.run([os.path.join(cluster.bin_dir, "psql"), cluster.url, "-Atc", sql],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise AssertionError(f"psql failed: {done.stderr}")
    return done.stdout.strip()


def process_user(pid):
    with open(f"/proc/{pid}/status") as f:
        uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
    import pwd
    return pwd.getpwuid(uid).pw_name


class PgClusterTest(unittest.TestCase):
    def test_cluster_lifecycle(self):
        with pg_cluster.PgCluster() as cluster:
            directory = cluster.dir
            self.assertEqual(psql(cluster, "SELECT current_user"), pg_cluster.USER)
            # Only the unix socket: no TCP listener.
            self.assertEqual(psql(cluster, "SHOW listen_addresses"), "")
            with open(os.path.join(directory, "data", "postmaster.pid")) as f:
                pid = int(f.readline())
            expected = pg_cluster.UNPRIVILEGED if os.geteuid() == 0 else process_user(os.getpid())
            self.assertEqual(process_user(pid), expected)
            cluster.restart()
            self.assertEqual(psql(cluster, "SELECT 1"), "1")
            url = cluster.create_database("second")
            self.assertTrue(url.startswith("postgresql://lcmcoord@/second?host="))
        self.assertFalse(os.path.exists(directory))
        self.assertFalse(os.path.exists(f"/proc/{pid}"))

    def test_command_line_for_ctest_fixtures(self):
        with tempfile.TemporaryDirectory() as tmp:
            state = os.path.join(tmp, "pg.state")
            done = subprocess.run([sys.executable, SCRIPT, "start", state],
                                  capture_output=True, text=True, timeout=180)
            self.assertEqual(done.returncode, 0, done.stderr)
            values = pg_cluster.read_state(state)
            self.assertTrue(values["url"].startswith("postgresql://"))
            cluster = pg_cluster.PgCluster(state=values)
            self.assertEqual(psql(cluster, "SELECT 2"), "2")
            done = subprocess.run([sys.executable, SCRIPT, "stop", state],
                                  capture_output=True, text=True, timeout=180)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertFalse(os.path.exists(state))
            self.assertFalse(os.path.exists(values["dir"]))
            # A cleanup after a failed setup has nothing to do, and says nothing.
            done = subprocess.run([sys.executable, SCRIPT, "stop", state],
                                  capture_output=True, text=True, timeout=60)
            self.assertEqual((done.returncode, done.stderr), (0, ""))

    def test_missing_binaries_fail_with_one_clear_line(self):
        with tempfile.TemporaryDirectory() as tmp:
            state = os.path.join(tmp, "pg.state")
            env = dict(os.environ, LCMCOORD_PG_BIN=os.path.join(tmp, "no-such-bin"))
            done = subprocess.run([sys.executable, SCRIPT, "start", state], env=env,
                                  capture_output=True, text=True, timeout=60)
            self.assertEqual(done.returncode, 1)
            lines = done.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, done.stderr)
            self.assertIn("PostgreSQL server binaries", lines[0])
            self.assertIn("no-such-bin", lines[0])
            self.assertFalse(os.path.exists(state))


if __name__ == "__main__":
    unittest.main()
