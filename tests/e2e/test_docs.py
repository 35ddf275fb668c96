"""Runs the examples of docs/*.md that are marked runnable, so that the documentation cannot
drift from the program. A code block is runnable when the line before its opening fence is

    <!-- runnable -->                      run it as it is
    <!-- runnable: em ARGS... -->          run it against `lcmcoord em ARGS...`
    <!-- runnable: file NAME -->           not run: saved as NAME for the others to use

(an HTML comment, so it does not show when the page is rendered). Lua blocks run under
`lcmcoord run`, sh blocks under bash with the built program first on PATH; each against a
fresh `lcmcoord em`, its URL put wherever the page says 127.0.0.1:6789, in a directory
holding the page's `file` blocks. A block passes when it exits 0.
"""

import glob
import os
import re
import shutil
import subprocess
import tempfile

import harness
from harness import EM

DOCS = os.path.join(harness.SOURCE_DIR, "docs")
MARKER = re.compile(r"^<!--\s*runnable(?::\s*(.*?))?\s*-->\s*$")
FENCE = re.compile(r"^```(\w+)")
DOC_ENDPOINT = "127.0.0.1:6789"


class Block:
    def __init__(self, page, line, language, options, text):
        self.page, self.line, self.language, self.text = page, line, language, text
        words = (options or "").split()
        self.kind = words[0] if words else "run"
        self.args = words[1:]

    def __repr__(self):
        return f"{os.path.basename(self.page)}:{self.line} ({self.language})"


def blocks_of(page):
    with open(page) as f:
        lines = f.read().split("\n")
    found = []
    i = 0
    while i < len(lines):
        marker = MARKER.match(lines[i])
        if marker and i + 1 < len(lines) and FENCE.match(lines[i + 1]):
            language = FENCE.match(lines[i + 1]).group(1)
            end = i + 2
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            found.append(Block(page, i + 2, language, marker.group(1),
                               "\n".join(lines[i + 2:end]) + "\n"))
            i = end
        elif marker:
            raise AssertionError(f"{page}:{i + 1}: a runnable marker must be followed by a fence")
        i += 1
    return found


def stdin_for_scripts():
    """What `lcmcoord run` gets on stdin for an example that is not a CoordinateVNF script."""
    help_text = harness.run_lcmcoord("run", "--help").stdout
    return (["--any-params"] if "--any-params" in help_text else []), "{}"


class RunnableDocsTest(harness.TestCase):
    def test_every_runnable_block_runs(self):
        pages = sorted(glob.glob(os.path.join(DOCS, "*.md")))
        blocks = [b for page in pages for b in blocks_of(page)]
        runnable = [b for b in blocks if b.kind in ("run", "em")]
        self.assertGreaterEqual(len(runnable), 15, "the runnable markers went missing")
        flags, stdin = stdin_for_scripts()
        for block in runnable:
            with self.subTest(block=repr(block)):
                self.run_block(block, [b for b in blocks
                                       if b.kind == "file" and b.page == block.page], flags, stdin)

    def run_block(self, block, files, flags, stdin):
        args = [os.path.join(harness.SOURCE_DIR, a) if a.endswith(".lua") else a
                for a in (block.args if block.kind == "em" else [])]
        with tempfile.TemporaryDirectory() as work, EM(*args) as em:
            endpoint = em.url.split("://", 1)[1]
            for f in files:
                with open(os.path.join(work, f.args[0]), "w") as out:
                    out.write(f.text.replace(DOC_ENDPOINT, endpoint))
            text = block.text.replace(DOC_ENDPOINT, endpoint)
            if block.language == "lua":
                script = os.path.join(work, "example.lua")
                with open(script, "w") as out:
                    out.write(text)
                cmd = [harness.LCMCOORD_BIN, "run", *flags, script]
            elif block.language in ("sh", "bash"):
                cmd = ["bash", "-euo", "pipefail", "-c", text]
                stdin = None
            else:
                self.fail(f"{block!r}: no way to run a {block.language} block")
            env = dict(os.environ)
            env["PATH"] = os.path.dirname(os.path.abspath(shutil.which(harness.LCMCOORD_BIN)
                                                          or harness.LCMCOORD_BIN)) + \
                os.pathsep + env.get("PATH", "")
            done = subprocess.run(cmd, cwd=work, input=stdin, capture_output=True, text=True,
                                  timeout=120 * harness.TIME_FACTOR, env=env)
        self.assertEqual(done.returncode, 0,
                         f"{block!r} failed:\n{text}\nstdout: {done.stdout}\n"
                         f"stderr: {done.stderr}")

    def test_markers_name_known_kinds(self):
        for page in sorted(glob.glob(os.path.join(DOCS, "*.md"))):
            for block in blocks_of(page):
                with self.subTest(block=repr(block)):
                    self.assertIn(block.kind, ("run", "em", "file"))
                    if block.kind == "file":
                        self.assertEqual(len(block.args), 1)


class EmSynopsisTest(harness.TestCase):
    """em.md's synopsis, `lcmcoord em --help`'s usage line and its option list name the same
    options: a flag the program takes is never missing from what an operator reads."""

    def test_the_synopsis_usage_and_option_list_agree(self):
        done = harness.run_lcmcoord("em", "--help")
        self.assertEqual(done.returncode, 0, done.stderr)
        usage, _, body = done.stdout.partition("\n\n")
        in_usage = set(re.findall(r"--[a-z][a-z0-9-]*", usage))
        described = set(re.findall(r"^  (--[a-z][a-z0-9-]*)", body, re.M))
        with open(os.path.join(DOCS, "em.md")) as f:
            page = f.read()
        synopsis = re.search(r"^```\n(lcmcoord em \[.*?)^```", page, re.M | re.S).group(1)
        in_page = set(re.findall(r"--[a-z][a-z0-9-]*", synopsis))
        self.assertIn("--log-format", in_usage)
        self.assertEqual(in_page, in_usage, "em.md's synopsis vs em --help's usage line")
        self.assertEqual(described, in_usage, "em --help's option list vs its usage line")


if __name__ == "__main__":
    import unittest

    unittest.main()
