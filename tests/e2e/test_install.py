"""Tests of the installed tree, as integrators meet it: `cmake --install` to a temporary
prefix, then the tree moved elsewhere (it must not care where it lives) and used from there:
the program (with `lcmcoord em` running the installed simulator, and no server library
linked), the Lua module under a stock lua5.4, `pkg-config` compiling the documented C
example, a CMake project using find_package(lcmcoord) and lcmcoord::lcmcoord, the rockspec's
sources compiled the way luarocks' builtin backend does, the bash completion, the man page
and the Lua language server annotations.
"""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

import harness
import test_program_boundaries
from harness import EM

BUILD_DIR = os.environ.get("LCMCOORD_BUILD_DIR", "")
CC = os.environ.get("CC") or "cc"
SOURCE = harness.SOURCE_DIR
ROCKSPEC = os.path.join(SOURCE, "lcmcoord-0.1.0-1.rockspec")


def run(cmd, env=None, cwd=None, stdin=None, timeout=300):
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run(cmd, env=full, cwd=cwd, input=stdin, capture_output=True, text=True,
                          timeout=timeout * harness.TIME_FACTOR)


def preload_env(extra=None):
    """Under sanitizers, programs outside the build (lua5.4, consumers) need the sanitizer
    runtime first (tests/ecosystem.cmake passes it); leaks are the C suites' business."""
    env = dict(extra or {})
    preload = os.environ.get("LCMC_STOCK_LUA_PRELOAD")
    if preload:
        env["LD_PRELOAD"] = preload
        env["ASAN_OPTIONS"] = "detect_leaks=0"
    return env


@unittest.skipUnless(BUILD_DIR, "LCMCOORD_BUILD_DIR is set by ctest")
class InstalledTreeTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._dir = tempfile.TemporaryDirectory()
        staged = os.path.join(cls._dir.name, "staged")
        done = run(["cmake", "--install", BUILD_DIR, "--prefix", staged])
        if done.returncode != 0:
            raise AssertionError(f"cmake --install failed: {done.stderr}")
        # Moved after installing: nothing may point back at the install prefix.
        cls.prefix = os.path.join(cls._dir.name, "moved", "opt")
        os.makedirs(os.path.dirname(cls.prefix))
        shutil.move(staged, cls.prefix)
        libs = glob.glob(os.path.join(cls.prefix, "lib*", "liblcmcoord.so"))
        if len(libs) != 1:
            raise AssertionError(f"expected one liblcmcoord.so, found {libs}")
        cls.libdir = os.path.dirname(libs[0])

    @classmethod
    def tearDownClass(cls):
        cls._dir.cleanup()

    def path(self, *parts):
        return os.path.join(self.prefix, *parts)

    def lua(self, code, env=None):
        extra = {"LUA_CPATH": self.path("lib", "lua", "5.4", "?.so") + ";;"}
        extra.update(env or {})
        return run(["lua5.4", "-e", code], env=preload_env(extra))

    def test_program_runs_from_the_moved_tree(self):
        done = run([self.path("bin", "lcmcoord"), "--version"])
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.splitlines()[0], "lcmcoord 0.1.0")

    def test_sample_script_runs_from_the_moved_tree(self):
        script = self.path("share", "lcmcoord", "scripts", "coordinate_vnf.lua")
        with open(self.path("share", "lcmcoord", "scripts", "examples", "vnfc_param.json")) as f:
            param = json.load(f)
        with EM("--basic", "tacker:tacker") as em:
            param["endpoint"] = em.url
            done = run([self.path("bin", "lcmcoord"), "run", script], stdin=json.dumps(param))
        self.assertEqual(done.returncode, 0, done.stderr)

    def test_em_subcommand_runs_the_installed_simulator(self):
        # The simulator is its own program in libexec/lcmcoord/, found from the moved
        # bin/lcmcoord; a coordination against it by the installed client goes through.
        em_program = self.path("libexec", "lcmcoord", "lcmcoord-em")
        self.assertTrue(os.access(em_program, os.X_OK), em_program)
        proc = subprocess.Popen([self.path("bin", "lcmcoord"), "em", "--listen", "127.0.0.1:0"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, **preload_env()))
        try:
            line = proc.stdout.readline()
            match = harness.LISTEN_LINE.match(line.strip())
            self.assertIsNotNone(match, line + proc.stderr.read() if not line else line)
            self.assertEqual(os.path.realpath(f"/proc/{proc.pid}/exe"),
                             os.path.realpath(em_program))
            done = run([self.path("bin", "lcmcoord"), "coordinate", "--endpoint", match.group(1),
                        "--action", "prv.example.drain"])
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertEqual(json.loads(done.stdout)["coordinationResult"], "CONTINUE")
        finally:
            proc.send_signal(signal.SIGTERM)
            status = proc.wait(timeout=30 * harness.TIME_FACTOR)
            proc.stdout.close()
            proc.stderr.close()
        self.assertEqual(status, 0)
        done = run([self.path("bin", "lcmcoord"), "em", "--help"])
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertTrue(done.stdout.startswith("usage: lcmcoord em "))

    def test_installed_client_links_no_server_library(self):
        test_program_boundaries.assert_links_no_server_library(self, self.path("bin", "lcmcoord"))

    def test_stock_lua_loads_the_moved_module(self):
        done = self.lua('local m = require "lcmcoord"; print(m._VERSION, '
                        'm.request{action = "x"}.coordinationActionName)')
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.split(), ["lcmcoord", "0.1.0", "x"])

    def test_pkg_config_compiles_the_c_example(self):
        env = {"PKG_CONFIG_PATH": os.path.join(self.libdir, "pkgconfig")}
        flags = run(["pkg-config", "--cflags", "--libs", "lcmcoord"], env=env)
        self.assertEqual(flags.returncode, 0, flags.stderr)
        self.assertIn("-llcmcoord", flags.stdout.split())
        libdir = run(["pkg-config", "--variable=libdir", "lcmcoord"], env=env).stdout.strip()
        self.assertEqual(os.path.realpath(libdir), os.path.realpath(self.libdir))
        # The command line the example's comment gives, as it is (docs/c-api.md says the same).
        with open(os.path.join(SOURCE, "docs", "examples", "coordinate.c")) as f:
            (command,) = [line.strip(" *") for line in f if line.strip(" *").startswith("cc ")]
        with open(os.path.join(SOURCE, "docs", "c-api.md")) as f:
            self.assertIn(command, f.read())
        build = os.path.join(self._dir.name, "cbuild")
        os.makedirs(build, exist_ok=True)
        shutil.copy(os.path.join(SOURCE, "docs", "examples", "coordinate.c"), build)
        done = subprocess.run(["bash", "-c", command.replace("cc ", f"{CC} ", 1)], cwd=build,
                              capture_output=True, text=True, env={**os.environ, **env},
                              timeout=120 * harness.TIME_FACTOR)
        self.assertEqual(done.returncode, 0, done.stderr)
        program = os.path.join(build, "coordinate")
        request = json.dumps(harness.sample_request())
        with EM() as em:
            done = run([program, em.url], stdin=request, env=preload_env())
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("CONTINUE", done.stdout)

    def test_find_package_gives_an_imported_target(self):
        project = os.path.join(self._dir.name, "consumer")
        os.makedirs(project, exist_ok=True)
        with open(os.path.join(project, "CMakeLists.txt"), "w") as f:
            f.write("cmake_minimum_required(VERSION 3.20)\n"
                    "project(consumer LANGUAGES C)\n"
                    "find_package(lcmcoord 0.1 REQUIRED)\n"
                    "add_executable(consumer main.c)\n"
                    "target_link_libraries(consumer PRIVATE lcmcoord::lcmcoord)\n")
        with open(os.path.join(project, "main.c"), "w") as f:
            f.write("#include <stdio.h>\n#include <lcmcoord/lcmcoord.h>\n"
                    "int main(void)\n{\n    lcmc_engine *engine = NULL;\n"
                    "    if (lcmc_engine_new(&engine) != LCMC_OK)\n        return 1;\n"
                    "    lcmc_engine_free(engine);\n"
                    "    printf(\"%s\\n\", lcmc_strerror(LCMC_EDEADLINE));\n    return 0;\n}\n")
        build = os.path.join(project, "build")
        done = run(["cmake", "-S", project, "-B", build, f"-DCMAKE_PREFIX_PATH={self.prefix}",
                    f"-DCMAKE_C_COMPILER={CC}"])
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        done = run(["cmake", "--build", build])
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        done = run([os.path.join(build, "consumer")], env=preload_env())
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertTrue(done.stdout.strip())

    def test_rockspec_builds_the_module_against_the_installed_library(self):
        # The rockspec as luarocks reads it: a Lua file whose globals are the fields.
        fields = self.lua('local t = {}; assert(loadfile(os.getenv("R"), "t", t))(); '
                          'print(require "lcmcoord".json.encode(t))', env={"R": ROCKSPEC})
        self.assertEqual(fields.returncode, 0, fields.stderr)
        spec = json.loads(fields.stdout)
        self.assertEqual((spec["package"], spec["version"]), ("lcmcoord", "0.1.0-1"))
        self.assertEqual(spec["build"]["type"], "builtin")
        module = spec["build"]["modules"]["lcmcoord"]
        # jansson: the module converts Lua values to and from the runtime's jansson values.
        self.assertEqual(module["libraries"], ["lcmcoord", "jansson"])
        self.assertIn("lua >= 5.4, < 5.5", spec["dependencies"])
        with open(os.path.join(SOURCE, "bindings", "lua", "CMakeLists.txt")) as f:
            listed = re.search(r"set\(LCMC_LUA_SOURCES(.*?)\)", f.read(), re.S).group(1).split()
        self.assertEqual(sorted(module["sources"]),
                         sorted(f"bindings/lua/{name}" for name in listed))
        # What the builtin backend does with those fields, against the moved tree.
        out = os.path.join(self._dir.name, "rock", "lcmcoord.so")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        defines = [f"-D{d}" for d in module["defines"]]
        incdirs = [f"-I{d.replace('$(LCMCOORD_INCDIR)', self.path('include'))}"
                   for d in module["incdirs"]]
        done = run([CC, "-shared", "-fPIC", "-O2", "-I/usr/include/lua5.4", *defines, *incdirs,
                    *module["sources"], f"-L{self.libdir}", "-llcmcoord",
                    f"-Wl,-rpath,{self.libdir}", "-o", out], cwd=SOURCE)
        self.assertEqual(done.returncode, 0, done.stderr)
        done = run(["lua5.4", "-e", 'print(require "lcmcoord".version)'],
                   env=preload_env({"LUA_CPATH": os.path.dirname(out) + "/?.so;;"}))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(), "0.1.0")

    def test_bash_completion_from_the_installed_file(self):
        completion = self.path("share", "bash-completion", "completions", "lcmcoord")
        cases = {
            ("lcmcoord", "ru"): "run",
            (self.path("bin", "lcmcoord"), "run", "--log"): "--log-format",
            (self.path("bin", "lcmcoord"), "coordinate", "--end"): "--endpoint",
            (self.path("bin", "lcmcoord"), "em", "--log-format", "j"): "json",
            ("lcmcoord", "em", "--mode", ""): "sync async",
        }
        for words, expected in cases.items():
            with self.subTest(words=words):
                quoted = " ".join(f"'{w}'" for w in words)
                done = run(["bash", "-c", f"source '{completion}'; COMP_WORDS=({quoted}); "
                            f"COMP_CWORD={len(words) - 1}; _lcmcoord; echo ${{COMPREPLY[@]}}"])
                self.assertEqual(done.returncode, 0, done.stderr)
                self.assertEqual(done.stdout.strip(), expected)
        self.assertTrue(os.path.isfile(
            self.path("share", "zsh", "vendor-completions", "_lcmcoord")))

    def test_bash_completion_offers_every_option_of_every_help(self):
        completion = self.path("share", "bash-completion", "completions", "lcmcoord")
        program = self.path("bin", "lcmcoord")
        for sub in ("run", "coordinate", "repl", "em"):
            with self.subTest(sub=sub):
                help_text = run([program, sub, "--help"]).stdout
                wanted = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", help_text))
                done = run(["bash", "-c", f"source '{completion}'; COMP_WORDS=('{program}' "
                            f"{sub} --); COMP_CWORD=2; _lcmcoord; echo ${{COMPREPLY[@]}}"])
                self.assertLessEqual(wanted, set(done.stdout.split()))

    def test_man_page_renders_and_names_every_subcommand_and_variable(self):
        page = self.path("share", "man", "man1", "lcmcoord.1")
        done = run(["groff", "-man", "-Tutf8", "-ww", page])
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stderr.strip(), "")
        text = re.sub(r".\x08", "", done.stdout)
        for needed in ("NAME", "SYNOPSIS", "EXIT STATUS", "ENVIRONMENT", "FILES",
                       "lcmcoord run", "lcmcoord coordinate", "lcmcoord repl", "lcmcoord em",
                       "LCMCOORD_KEY_PASSWORD", "LCMCOORD_CONFIG", "/etc/lcmcoord/lcmcoord.conf",
                       "--print-config", "--log-format"):
            self.assertIn(needed, text.replace("‐", "-"))
        if shutil.which("man"):
            done = run(["man", "-l", page], env={"MANPAGER": "cat", "MANWIDTH": "80"})
            self.assertEqual(done.returncode, 0, done.stderr)

    def test_man_page_documents_every_option_of_every_help(self):
        with open(self.path("share", "man", "man1", "lcmcoord.1")) as f:
            page = f.read().replace("\\-", "-")
        program = self.path("bin", "lcmcoord")
        for sub in ("run", "coordinate", "repl", "em"):
            help_text = run([program, sub, "--help"]).stdout
            for option in set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", help_text)):
                with self.subTest(sub=sub, option=option):
                    self.assertIn(option, page)

    def test_annotations_declare_every_function_and_method(self):
        with open(self.path("share", "lcmcoord", "lua-annotations", "lcmcoord.lua")) as f:
            text = f.read()
        self.assertTrue(text.startswith("---@meta"))
        declared = set(re.findall(r"^function ([\w.:]+)\(", text, re.M))
        # Every function the module has, by the names the annotations use.
        listing = self.lua(r'''
local m = require "lcmcoord"
local out = {}
local function add(prefix, t, sep)
  for k, v in pairs(t) do
    if type(v) == "function" and not k:match("^_") then out[#out + 1] = prefix .. sep .. k end
  end
end
add("lcmcoord", m, ".")
add("authlib", m.auth, ".")
add("retrylib", m.retry, ".")
add("http", m.http, ".")
add("sshlib", m.ssh, ".")
add("log", m.log, ".")
add("json", m.json, ".")
local c <close> = m.client{endpoint = "http://127.0.0.1:1"}
add("client", getmetatable(c).__index, ":")
local a <close> = m.auth.new{authType = {"BASIC"}, paramsBasic = {userName = "u", password = "p"}}
add("auth", getmetatable(a).__index, ":")
add("policy", getmetatable(m.retry.policy{}).__index, ":")
add("ssh", debug.getregistry()["lcmcoord.ssh"].__index, ":")
print(table.concat(out, " "))
''')
        self.assertEqual(listing.returncode, 0, listing.stderr)
        actual = set(listing.stdout.split())
        self.assertGreater(len(actual), 30)
        self.assertEqual(actual - declared, set(), "functions without annotations")
        for name in declared - actual:
            self.fail(f"annotation of a function the module does not have: {name}")


if __name__ == "__main__":
    unittest.main()
