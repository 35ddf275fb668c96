"""A small expect-like driver for programs that want a terminal: runs a command on a fresh
pseudo-terminal (its controlling terminal, so Ctrl-C typed there is a real SIGINT from the
line discipline), sends keystrokes, and waits for text with deadlines. Only the standard
library; written for the `lcmcoord repl` suites.

Everything read is kept (`transcript`), so a test can assert that something never appeared
on the screen, e.g. a password.
"""

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time

from harness import TIME_FACTOR

# CSI and other escape sequences a line editor emits (cursor moves, colours, bracketed
# paste, keypad modes); removed before matching so tests match what a person reads.
_ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78cDEHM]"
                      rb"|\x1b\][^\x07]*\x07|[\x07\x08\r]")


def strip_escapes(data):
    """The text of terminal output: escape sequences, carriage returns and bells removed."""
    return _ESCAPES.sub(b"", data).decode("utf-8", "replace")


class PtySession:
    """One process on a pseudo-terminal. Use as a context manager; on exit the process is
    killed if it is still running."""

    def __init__(self, argv, env=None, rows=50, cols=200):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

        def make_controlling_terminal():
            # Runs in the child after setsid() and the dup2 of stdio onto the slave.
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        try:
            self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                         env=env, start_new_session=True,
                                         preexec_fn=make_controlling_terminal)
        finally:
            os.close(slave)
        self.transcript = b""  # everything read, raw
        self._pending = b""    # read but not yet consumed by expect()
        self._eof = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.master is not None:
            os.close(self.master)
            self.master = None

    def send(self, text):
        data = text.encode() if isinstance(text, str) else text
        while data:
            n = os.write(self.master, data)
            data = data[n:]

    def sendline(self, text):
        self.send(text + "\r")

    def _read_some(self, timeout):
        if self._eof:
            return False
        ready, _, _ = select.select([self.master], [], [], max(0.0, timeout))
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the slave side is closed, the process is gone
            chunk = b""
        if not chunk:
            self._eof = True
            return False
        self.transcript += chunk
        self._pending += chunk
        return True

    def expect(self, pattern, timeout=10.0):
        """Waits until `pattern` (a regex string) appears in the output not consumed yet,
        with escapes removed; consumes up to the end of the match and returns the text that
        came before it plus the match."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout * TIME_FACTOR
        while True:
            text = strip_escapes(self._pending)
            match = regex.search(text)
            if match:
                # Consume by the length of the cleaned prefix: find the raw offset whose
                # cleaned form covers the match.
                self._consume(match.end())
                return text[:match.end()]
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._eof:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {pattern!r}; screen so far:\n"
                    f"{strip_escapes(self.transcript)[-3000:]}")
            self._read_some(min(remaining, 0.5))

    def line_editor_ready(self):
        """True once the program reads keys one by one (canonical mode off): a line editor
        that has just printed its prompt may not have switched the terminal yet, and keys
        sent before it does are taken by the kernel's own line editing instead. The master
        side of a Linux pty reads the terminal settings the program set on its side."""
        lflag = termios.tcgetattr(self.master)[3]
        return not lflag & termios.ICANON

    def expect_prompt(self, pattern, timeout=10.0):
        """expect(pattern), then waits until the line editor is reading keys."""
        text = self.expect(pattern, timeout)
        deadline = time.monotonic() + timeout * TIME_FACTOR
        while not self.line_editor_ready():
            if time.monotonic() >= deadline:
                raise AssertionError(f"the terminal stayed in canonical mode after {pattern!r}")
            self._read_some(0.01)
        return text

    def _consume(self, cleaned_length):
        # The shortest raw prefix whose cleaned text is at least cleaned_length long.
        lo, hi = 0, len(self._pending)
        while lo < hi:
            mid = (lo + hi) // 2
            if len(strip_escapes(self._pending[:mid])) >= cleaned_length:
                hi = mid
            else:
                lo = mid + 1
        self._pending = self._pending[lo:]

    def drain(self, timeout=0.0):
        """Reads whatever arrives within `timeout` seconds (0: what is already there)."""
        deadline = time.monotonic() + timeout * TIME_FACTOR
        while self._read_some(max(0.0, deadline - time.monotonic())):
            pass

    def wait(self, timeout=10.0):
        """Waits for the process to exit, reading its output meanwhile; returns its status."""
        deadline = time.monotonic() + timeout * TIME_FACTOR
        while self.proc.poll() is None:
            if time.monotonic() >= deadline:
                raise AssertionError(f"process still running after {timeout} s; screen:\n"
                                     f"{strip_escapes(self.transcript)[-3000:]}")
            self._read_some(0.05)
        # The rest of its output is there once the slave side reports EOF.
        eof_deadline = time.monotonic() + 5.0
        while not self._eof and time.monotonic() < eof_deadline:
            self._read_some(eof_deadline - time.monotonic())
        return self.proc.returncode

    def screen(self):
        return strip_escapes(self.transcript)
