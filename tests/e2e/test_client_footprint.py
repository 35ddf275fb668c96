"""What the `lcmcoord` a VNFM starts for every coordination carries (issue 13, peak RSS): the
REPL's line editor (libedit, and libtinfo, libbsd, libmd that it brings) is a module the REPL
loads (bindings/host/repl_edit_load.c), so `lcmcoord run` neither names nor maps it; the
REPL still reads lines through it; and a REPL whose module is missing says so in one line
and exits non-zero instead of crashing. yajl, linked into liblcmcoord, exports nothing.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness
from harness import LCMCOORD_BIN, TIME_FACTOR

EDITOR_LIBRARIES = re.compile(r"^lib(edit|tinfo|bsd|md)\.so")
LIBRARY = os.environ.get("LCMCOORD_LIBRARY", "")


def needed(path):
    done = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", done.stdout)


def run(args, stdin="", env=None):
    return subprocess.run(args, input=stdin, capture_output=True, text=True, env=env,
                          timeout=30 * TIME_FACTOR)


class ClientFootprintTest(unittest.TestCase):
    def test_the_program_names_no_line_editor(self):
        names = needed(shutil.which(LCMCOORD_BIN) or LCMCOORD_BIN)
        self.assertEqual([n for n in names if EDITOR_LIBRARIES.match(n)], [], names)

    def test_a_run_maps_no_line_editor(self):
        with tempfile.TemporaryDirectory() as tmp:
            script = os.path.join(tmp, "maps.lua")
            with open(script, "w") as f:
                f.write('local f = assert(io.open("/proc/self/maps"))\n'
                        'io.write(f:read("a"))\nf:close()\n')
            done = run([LCMCOORD_BIN, "run", "--any-params", script], stdin="{}")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("liblcmcoord", done.stdout)  # the maps were read
        mapped = {os.path.basename(line.split()[-1]) for line in done.stdout.splitlines()
                  if "/" in line}
        self.assertEqual(sorted(n for n in mapped if EDITOR_LIBRARIES.match(n)
                                or n.startswith("lcmcoord-edit")), [])

    def test_the_repl_loads_its_editor(self):
        done = run([LCMCOORD_BIN, "repl"],
                   stdin='m = io.open("/proc/self/maps"):read("a")\n'
                         'print(m:find("lcmcoord-edit.so", 1, true) ~= nil, '
                         'm:find("libedit", 1, true) ~= nil)\n')
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("true\ttrue", done.stdout)

    def test_a_repl_without_its_editor_says_so_in_one_line(self):
        # The program copied to a tree without libexec/lcmcoord/lcmcoord-edit.so; its
        # libraries from the build.
        program = shutil.which(LCMCOORD_BIN) or LCMCOORD_BIN
        with tempfile.TemporaryDirectory() as tmp:
            os.makedirs(os.path.join(tmp, "bin"))
            copy = os.path.join(tmp, "bin", "lcmcoord")
            shutil.copy(program, copy)
            env = dict(os.environ)
            if LIBRARY:
                env["LD_LIBRARY_PATH"] = os.path.dirname(LIBRARY)
            done = run([copy, "repl"], stdin="print(1)\n", env=env)
        self.assertNotEqual(done.returncode, 0)
        lines = done.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, done.stderr)
        self.assertIn("lcmcoord repl: cannot load the line editor", lines[0])
        self.assertIn("lcmcoord-edit.so", lines[0])
        self.assertNotIn("1", done.stdout)

    @unittest.skipUnless(LIBRARY, "LCMCOORD_LIBRARY is set by ctest")
    def test_yajl_stays_inside_the_library(self):
        done = subprocess.run(["nm", "-D", "--defined-only", LIBRARY], capture_output=True,
                              text=True, check=True)
        self.assertNotRegex(done.stdout, r"\byajl_")
        self.assertNotIn("libyajl.so.2", needed(LIBRARY))


if __name__ == "__main__":
    unittest.main()
