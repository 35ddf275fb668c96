#!/usr/bin/env python3
"""CoordinateVNF script for OpenStack Tacker that hands the work to lcmcoord.

Tacker runs `python3 <script>` once per VNFC being replaced, with the VNFC parameters as a
Python pickle on stdin; it reads the exit status (0: go on) and keeps stderr as the error
detail. This script keeps that contract and lets a Lua script do the coordination:

1. reads the parameter dict from stdin and turns it into JSON (UUIDs, datetimes, bytes, sets
   and other values JSON has no type for become strings or lists);
2. takes the TLS files Tacker itself is configured with (`[v2_vnfm]` of
   /etc/tacker/tacker.conf, or $TACKER_CONF) so the EM is verified, and a client
   certificate presented, with no configuration of its own;
3. runs `lcmcoord run coordinate_vnf.lua` (the Lua script in this script's directory;
   lcmcoord from $LCMCOORD_BIN or PATH) with that JSON on stdin, and exits with its status,
   its stderr passed on to Tacker line by line. One line is reworded: where lcmcoord cannot
   verify the EM's certificate, its hint (`--cacert`) becomes the tacker.conf setting that
   fixes it, since Tacker itself does not verify by default and an operator whose Tacker
   sample worked will look there.

Standard library only, so that it runs with whatever python3 Tacker has.
"""

import configparser
import datetime
import decimal
import enum
import json
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid

PROG = "coordinate_vnf.py"
LUA_SCRIPT = "coordinate_vnf.lua"
DEFAULT_TACKER_CONF = "/etc/tacker/tacker.conf"
# Where a package install puts lcmcoord, for a Tacker whose PATH is minimal.
FALLBACK_BINS = ("/usr/bin/lcmcoord", "/usr/local/bin/lcmcoord", "/opt/lcmcoord/bin/lcmcoord")
EXIT_USAGE = 2


def fail(message, status=EXIT_USAGE):
    """Ends with one line on stderr: Tacker shows it as the reason the operation failed."""
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.exit(status)


def jsonable(value):
    """The value with everything JSON cannot hold made into what it can."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        # lcmcoord's JSON reader is strict: NaN and infinities are not JSON.
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {key_text(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [jsonable(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    # Tacker's versioned objects turn themselves into plain dicts.
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        try:
            return jsonable(to_dict())
        except Exception:  # an object that cannot is still shown, as text
            pass
    return str(value)


def key_text(key):
    if isinstance(key, str):
        return key
    converted = jsonable(key)
    return converted if isinstance(converted, str) else json.dumps(converted)


def read_parameters():
    # The pickle comes from the VNFM itself (Tacker's infra driver writes it to our stdin),
    # the trusted side of this exchange; Tacker's format leaves no alternative to unpickling.
    try:
        param = pickle.load(sys.stdin.buffer)
    except Exception as exc:
        fail(f"cannot read the VNFC parameters (a pickle) from stdin: {exc}")
    if not isinstance(param, dict):
        fail(f"the VNFC parameters are a {type(param).__name__}, not a dict")
    return jsonable(param)


# lcmcoord's hint when the EM's certificate is signed by a CA it was not given.
LCMCOORD_CA_HINT = "; hint: this host does not trust the CA that signed the certificate: "


def tacker_ca_hint(path, ca_file_unused):
    """The hint naming the tacker.conf setting that makes lcmcoord trust the EM."""
    place = f"[v2_vnfm] of {path or DEFAULT_TACKER_CONF}"
    if ca_file_unused:
        return (f"; hint: Tacker does not verify the EM's certificate by default, lcmcoord "
                f"does, and uses notification_ca_cert_file only when Tacker would: set "
                f"notification_verify_cert = True in {place} (or give the EM's CA as "
                f"LCMCOORD_CACERT or tls.cacert in lcmcoord.conf)")
    return (f"; hint: Tacker does not verify the EM's certificate by default, lcmcoord does: "
            f"set notification_ca_cert_file = <the EM's CA file> and notification_verify_cert "
            f"= True in {place} (or give the EM's CA as LCMCOORD_CACERT or tls.cacert in "
            f"lcmcoord.conf)")


def tacker_tls():
    """lcmcoord run flags for the TLS files of Tacker's [v2_vnfm] section, the temporary
    files made for them (removed after the run), and the hint for an untrusted EM."""
    path = os.environ.get("TACKER_CONF", DEFAULT_TACKER_CONF)
    if not path or not os.path.exists(path):
        return [], [], tacker_ca_hint(path, False)
    # oslo.config values are literal (no % interpolation); a repeated key keeps the last.
    conf = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        conf.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}".replace("\n", " "))
    section = "v2_vnfm"

    def option(name):
        value = conf.get(section, name, fallback="").strip()
        return value or None

    flags, temporary = [], []
    verify = option("notification_verify_cert")
    ca_files = []
    # Tacker verifies with notification_ca_cert_file only when notification_verify_cert is
    # on; lcmcoord always verifies, so the file is only ever an extra trust anchor.
    verified = verify is None or verify.lower() in ("true", "yes", "on", "1")
    if verified:
        ca_files.append(option("notification_ca_cert_file"))
    hint = tacker_ca_hint(path, not verified and option("notification_ca_cert_file"))
    ca_files.append(option("notification_mtls_ca_cert_file"))
    ca_files = list(dict.fromkeys(f for f in ca_files if f))
    if len(ca_files) == 1:
        flags += ["--cacert", ca_files[0]]
    elif ca_files:
        # One bundle for both: lcmcoord takes one CA file for every client of a script.
        bundle = tempfile.NamedTemporaryFile("wb", prefix="lcmcoord-ca-", suffix=".pem",
                                             delete=False)
        temporary.append(bundle.name)
        with bundle:
            for name in ca_files:
                try:
                    with open(name, "rb") as f:
                        bundle.write(f.read().rstrip(b"\n") + b"\n")
                except OSError as exc:
                    cleanup(temporary)
                    fail(f"cannot read {name} ({path} [v2_vnfm]): {exc.strerror}")
        flags += ["--cacert", bundle.name]
    client = option("notification_mtls_client_cert_file")
    if client:
        # Tacker keeps the certificate and its key in this one PEM file; libcurl (OpenSSL)
        # takes the certificate from it for --cert and the key for --key.
        flags += ["--cert", client, "--key", client]
    return flags, temporary, hint


def pass_stderr(stream, hint):
    """Copies lcmcoord's stderr to ours as it comes, the CA hint replaced by `hint`."""
    for line in iter(stream.readline, b""):
        text = line.decode("utf-8", "replace")
        at = text.find(LCMCOORD_CA_HINT)
        if at >= 0:
            line = (text[:at] + hint + "\n").encode("utf-8")
        sys.stderr.buffer.write(line)
        sys.stderr.buffer.flush()


def cleanup(paths):
    for name in paths:
        try:
            os.unlink(name)
        except OSError:
            pass


def find_lcmcoord():
    explicit = os.environ.get("LCMCOORD_BIN")
    if explicit:
        return explicit
    found = shutil.which("lcmcoord")
    if found:
        return found
    for candidate in FALLBACK_BINS:
        if os.access(candidate, os.X_OK):
            return candidate
    fail("lcmcoord is not installed (not on PATH; set LCMCOORD_BIN to its path)")
    return None


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    script = os.path.join(here, LUA_SCRIPT)
    if not os.path.isfile(script):
        fail(f"{script} is missing: the Lua script goes next to this one")
    param = read_parameters()
    program = find_lcmcoord()
    flags, temporary, hint = tacker_tls()
    try:
        body = json.dumps(param, allow_nan=False).encode("utf-8")
        try:
            child = subprocess.Popen([program, "run", *flags, script], stdin=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        except OSError as exc:
            fail(f"cannot run {program}: {exc.strerror}")
        copier = threading.Thread(target=pass_stderr, args=(child.stderr, hint), daemon=True)
        copier.start()
        # Tacker stopping this script stops the coordination too: lcmcoord then asks the EM
        # to cancel what it holds.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda number, frame: child.send_signal(number))
        try:
            child.stdin.write(body)
            child.stdin.close()
        except BrokenPipeError:
            pass  # lcmcoord stopped reading; its status says why
        status = child.wait()
        copier.join()
    finally:
        cleanup(temporary)
    sys.exit(status if status >= 0 else 128 - status)


if __name__ == "__main__":
    main()
