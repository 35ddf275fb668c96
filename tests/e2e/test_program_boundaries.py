"""What the built programs and library show the outside, checked on the files themselves:
liblcmcoord.so exports exactly the functions its public headers declare with LCMC_API (`nm
-D`), the `lcmcoord` a VNFM runs links no server library (the EM simulator is its own
program, lcmcoord-em), and `lcmcoord em` runs that program in its own place: same process,
same exit status, same signals, and one clear line when it is missing.
"""

import glob
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import unittest

import harness
from harness import LCMCOORD_BIN, LISTEN_LINE, SOURCE_DIR, TIME_FACTOR

LIBRARY = os.environ.get("LCMCOORD_LIBRARY", "")
LUA_MODULE = os.environ.get("LCMCOORD_LUA_MODULE", "")
EM_PROGRAM = os.environ.get("LCMCOORD_EM_PROGRAM", "")

# Libraries only a server needs: the EM simulator's HTTP server and TLS, and what an
# HTTP-server or storage library would bring.
SERVER_LIBRARY = re.compile(r"lib(microhttpd|gnutls|sqlite3?|event|uv|nghttp2-server)\b")


def public_api_names():
    """Every name declared with LCMC_API in runtime/include/lcmcoord/*.h."""
    names = set()
    for header in glob.glob(os.path.join(SOURCE_DIR, "runtime", "include", "lcmcoord", "*.h")):
        with open(header) as f:
            text = f.read()
        text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
        text = re.sub(r"^\s*#.*$", " ", text, flags=re.M)
        for declaration in re.findall(r"\bLCMC_API\b([^;{]*)", text):
            name = re.search(r"\b(lcmc_\w+)\s*(\(|\[|$)", declaration.strip())
            if name is None:
                raise AssertionError(f"cannot read the name of: LCMC_API {declaration.strip()}")
            names.add(name.group(1))
    return names


def exported_names(library):
    done = subprocess.run(["nm", "-D", "--defined-only", library], capture_output=True,
                          text=True, check=True)
    names = set()
    for line in done.stdout.splitlines():
        parts = line.split()
        # Version nodes (symbol type A) are not symbols of ours.
        if len(parts) == 3 and parts[1] != "A":
            names.add(parts[2].split("@")[0])
    return names


def needed(path):
    """The libraries a file names itself (DT_NEEDED), not what they bring in turn."""
    done = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", done.stdout)


def ldd(path, env=None):
    """name -> resolved path of every library the dynamic loader would load for `path`."""
    done = subprocess.run(["ldd", path], capture_output=True, text=True, check=True, env=env)
    found = {}
    for line in done.stdout.splitlines():
        match = re.match(r"\s*(\S+)\s+=>\s+(\S+)", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def assert_links_no_server_library(test, program, env=None):
    """`program` and liblcmcoord name no server library, and the loader brings none in but
    what Debian's libcurl itself needs (its librtmp and libldap link GnuTLS: not ours to
    drop, and there whatever program uses libcurl)."""
    closure = ldd(program, env)
    library = next((p for n, p in closure.items() if n.startswith("liblcmcoord.so")), None)
    test.assertIsNotNone(library, f"{program} does not load liblcmcoord: {closure}")
    for path in (program, library):
        with test.subTest(needed_by=path):
            test.assertEqual([n for n in needed(path) if SERVER_LIBRARY.search(n)], [])
    curl = next((p for n, p in closure.items() if n.startswith("libcurl.so")), None)
    from_curl = set(ldd(curl)) if curl else set()
    test.assertEqual({n for n in closure if SERVER_LIBRARY.search(n)} - from_curl, set())
    test.assertNotIn("libmicrohttpd.so.12", closure)


@unittest.skipUnless(LIBRARY, "LCMCOORD_LIBRARY is set by ctest")
class ExportedSymbolsTest(unittest.TestCase):
    def test_the_library_exports_exactly_the_public_api(self):
        public = public_api_names()
        self.assertGreater(len(public), 50, "the headers' LCMC_API names were not read")
        exported = exported_names(LIBRARY)
        self.assertEqual(sorted(exported - public), [], "exported but not public")
        self.assertEqual(sorted(public - exported), [], "declared LCMC_API but not exported")

    def test_no_internal_name_is_exported(self):
        internal = [n for n in exported_names(LIBRARY) if n.startswith("lcmc__")]
        self.assertEqual(internal, [])


@unittest.skipUnless(LIBRARY, "the build's file names are set by ctest")
class ClientLinksTest(unittest.TestCase):
    def test_the_client_links_no_server_library(self):
        assert_links_no_server_library(self, LCMCOORD_BIN)

    def test_the_lua_module_links_no_server_library(self):
        self.assertEqual([n for n in needed(LUA_MODULE) if SERVER_LIBRARY.search(n)], [])

    def test_the_em_program_is_where_the_client_looks(self):
        expected = os.path.join(os.path.dirname(os.path.dirname(LCMCOORD_BIN)), "libexec",
                                "lcmcoord", "lcmcoord-em")
        self.assertEqual(os.path.realpath(EM_PROGRAM), os.path.realpath(expected))
        self.assertIn("libmicrohttpd.so.12", needed(EM_PROGRAM))


class EmSubcommandTest(unittest.TestCase):
    def test_the_em_replaces_the_client_process(self):
        # Same process (exec, no child): a signal to the pid `lcmcoord em` was started as
        # reaches the simulator, whose clean exit status is the one seen.
        with harness.EM() as em:
            exe = os.path.realpath(f"/proc/{em.proc.pid}/exe")
            self.assertEqual(os.path.basename(exe), "lcmcoord-em")
            children = open(f"/proc/{em.proc.pid}/task/{em.proc.pid}/children").read().split()
            self.assertEqual(children, [])
            self.assertEqual(em.stop(sig=signal.SIGINT), 0)

    def test_exit_status_and_messages_are_the_simulators(self):
        cases = [(["--bogus"], 2, "lcmcoord em: unknown option '--bogus'"),
                 (["--log-format", "yaml"], 2, "lcmcoord em: --log-format needs text or json"),
                 (["--chaos", "list"], 0, "")]
        for args, status, line in cases:
            with self.subTest(args=args):
                done = subprocess.run([LCMCOORD_BIN, "em", *args], capture_output=True,
                                      text=True, timeout=30 * TIME_FACTOR)
                self.assertEqual(done.returncode, status, done.stderr)
                self.assertTrue(done.stderr.startswith(line), done.stderr)
                if status == 0:
                    self.assertTrue(done.stdout.strip())

    def test_help_is_the_simulators(self):
        done = subprocess.run([LCMCOORD_BIN, "em", "--help"], capture_output=True, text=True,
                              timeout=30 * TIME_FACTOR)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertTrue(done.stdout.startswith("usage: lcmcoord em "), done.stdout)
        self.assertIn("--listen", done.stdout)
        self.assertEqual(done.stderr, "")

    def test_log_format_json_reaches_the_simulator(self):
        with harness.EM("--log-format", "json") as em:
            harness.curl("GET", em.url + "/lcmcoord/api_versions")
            line = harness.wait_for(lambda: em.stderr_text().strip(), what="a request line")
        self.assertTrue(line.splitlines()[0].startswith("{"), line)


@unittest.skipUnless(LIBRARY, "the build's file names are set by ctest")
class MissingEmTest(unittest.TestCase):
    """A tree without the simulator's program: `lcmcoord em` says which path it looked for,
    on one line, and fails as a shell would (127 missing, 126 not runnable)."""

    def setUp(self):
        self._dir = tempfile.TemporaryDirectory()
        self.addCleanup(self._dir.cleanup)
        os.makedirs(os.path.join(self._dir.name, "bin"))
        self.program = os.path.join(self._dir.name, "bin", "lcmcoord")
        shutil.copy2(LCMCOORD_BIN, self.program)
        self.em_path = os.path.join(self._dir.name, "libexec", "lcmcoord", "lcmcoord-em")
        # The copy finds liblcmcoord where it was built.
        self.env = dict(os.environ, LD_LIBRARY_PATH=os.path.dirname(LIBRARY))

    def run_em(self, *args):
        return subprocess.run([self.program, "em", *args], capture_output=True, text=True,
                              env=self.env, timeout=30 * TIME_FACTOR)

    def test_missing_program_is_one_line_naming_the_path(self):
        for args in (["--listen", "127.0.0.1:0"], ["--help"]):
            with self.subTest(args=args):
                done = self.run_em(*args)
                self.assertEqual(done.returncode, 127)
                self.assertEqual(done.stdout, "")
                self.assertEqual(done.stderr,
                                 f"lcmcoord em: cannot run the EM simulator {self.em_path}: "
                                 "No such file or directory\n")

    def test_program_that_cannot_run_is_one_line(self):
        os.makedirs(os.path.dirname(self.em_path))
        with open(self.em_path, "w") as f:
            f.write("not a program\n")
        os.chmod(self.em_path, stat.S_IRUSR | stat.S_IWUSR)
        done = self.run_em("--help")  # without any execute bit, root cannot run it either
        self.assertEqual(done.returncode, 126)
        self.assertEqual(done.stderr,
                         f"lcmcoord em: cannot run the EM simulator {self.em_path}: "
                         "Permission denied\n")

    def test_the_other_subcommands_do_not_need_it(self):
        done = subprocess.run([self.program, "coordinate", "--help"], capture_output=True,
                              text=True, env=self.env, timeout=30 * TIME_FACTOR)
        self.assertEqual(done.returncode, 0, done.stderr)


if __name__ == "__main__":
    unittest.main()
