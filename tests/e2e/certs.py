"""Test-time PKI for the end-to-end suites, made with the `openssl` CLI (no certificate is
ever checked in, so none can expire in the repository).

    from certs import make_pki
    pki = make_pki(tmpdir)          # a fresh CA and leaf certificates under tmpdir
    pki.ca_cert                     # PEM file names (str), see PKI below
    pki.thumbprint(pki.client_cert) # x5t#S256 of a certificate, computed by openssl

`make_pki(directory)` writes, all signed with EC P-256 keys (fast to make):

- `ca_cert`/`ca_key`: the test CA.
- `server_cert`/`server_key`: for `localhost` and IP 127.0.0.1 (subjectAltName), serverAuth,
  signed by the CA.
- `client_cert`/`client_key`: CN `lcmcoord-test-client`, clientAuth, signed by the CA.
- `expired_cert`/`expired_key`: CN `lcmcoord-expired-client`, signed by the CA, valid for
  localhost/127.0.0.1 and both client and server use, but its validity ended in the past.
- `self_signed_cert`/`self_signed_key`: CN `lcmcoord-self-signed`, for localhost/127.0.0.1,
  client and server use, signed by itself (not by the CA).
- `wrong_host_cert`/`wrong_host_key`: signed by the CA, serverAuth, but for
  `wrong.example` only (no localhost, no 127.0.0.1).
- `other_ca_cert`/`other_ca_key`: a second, unrelated CA, and `other_client_cert`/
  `other_client_key` signed by it (clientAuth).

`thumbprint(path)` (also `PKI.thumbprint`) gives a certificate's x5t#S256 the way a test
should compute it independently: DER from `openssl x509 -outform DER`, then SHA-256 and
base64url without padding.

Everything is made afresh per call (a fraction of a second); a suite typically calls it
once in setUpClass with a tempfile.TemporaryDirectory. Needs OpenSSL 1.1.1 or later; the
expired certificate is backdated with `openssl ca -startdate/-enddate`.
"""

import base64
import hashlib
import os
import subprocess
import tempfile

OPENSSL = os.environ.get("LCMCOORD_OPENSSL", "openssl")

CLIENT_CN = "lcmcoord-test-client"
EXPIRED_CN = "lcmcoord-expired-client"
SELF_SIGNED_CN = "lcmcoord-self-signed"
OTHER_CLIENT_CN = "lcmcoord-other-client"


def _run(*args, cwd=None):
    done = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _key(path):
    _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    os.chmod(path, 0o600)


def _ext_file(directory, name, lines):
    path = os.path.join(directory, name + ".ext")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _leaf(directory, name, cn, ext_lines, ca_cert, ca_key, days=30, start=None, end=None):
    # Every certificate made here is signed with SHA-256 and lives 30 days unless backdated.
    """A key and a certificate for `cn` signed by the CA (or by itself when ca_cert is None)."""
    key = os.path.join(directory, name + ".key")
    csr = os.path.join(directory, name + ".csr")
    cert = os.path.join(directory, name + ".pem")
    _key(key)
    _run("req", "-new", "-key", key, "-subj", f"/O=lcmcoord tests/CN={cn}", "-out", csr)
    ext = _ext_file(directory, name, ext_lines)
    if start is not None:
        # Backdating needs explicit dates, which `x509 -req` lacks before OpenSSL 3.4, so
        # sign the request through a throw-away `ca` configuration instead.
        return _signed_with_dates(directory, name, csr, ext, ca_cert, ca_key, start, end), key
    if ca_cert is None:
        args = ["x509", "-req", "-in", csr, "-signkey", key]
    else:
        args = ["x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
                "-CAcreateserial"]
    _run(*args, "-extfile", ext, "-out", cert, "-sha256", "-days", str(days))
    return cert, key


def _signed_with_dates(directory, name, csr, ext, ca_cert, ca_key, start, end):
    db = os.path.join(directory, name + ".db")
    open(db, "w").close()
    serial = os.path.join(directory, name + ".serial")
    with open(serial, "w") as f:
        f.write(os.urandom(8).hex().upper() + "\n")
    conf = os.path.join(directory, name + ".cnf")
    with open(conf, "w") as f:
        f.write("[ca]\ndefault_ca = test\n[test]\n"
                f"database = {db}\nserial = {serial}\nnew_certs_dir = {directory}\n"
                "policy = anything\ndefault_md = sha256\nunique_subject = no\n"
                "[anything]\nO = optional\nCN = supplied\n")
    cert = os.path.join(directory, name + ".pem")
    _run("ca", "-batch", "-config", conf, "-cert", ca_cert, "-keyfile", ca_key,
         "-in", csr, "-out", cert, "-startdate", start, "-enddate", end,
         "-extfile", ext, "-notext")
    return cert


def _ca(directory, name, cn):
    key = os.path.join(directory, name + ".key")
    cert = os.path.join(directory, name + ".pem")
    _key(key)
    _run("req", "-x509", "-new", "-key", key, "-subj", f"/O=lcmcoord tests/CN={cn}",
         "-days", "30", "-sha256", "-out", cert,
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def thumbprint(cert_path):
    """x5t#S256 of a PEM certificate: base64url (no padding) of SHA-256 over its DER,
    with the DER produced by `openssl x509 -outform DER`."""
    der = subprocess.run([OPENSSL, "x509", "-in", cert_path, "-outform", "DER"],
                         capture_output=True, check=True, timeout=30).stdout
    digest = hashlib.sha256(der).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class PKI:
    """File names (str) of everything make_pki() wrote; see the module docstring."""

    def __init__(self, directory):
        self.directory = directory

    thumbprint = staticmethod(thumbprint)


HOST_SAN = "subjectAltName=DNS:localhost,IP:127.0.0.1"
SERVER_EXT = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature",
              "extendedKeyUsage=serverAuth", HOST_SAN]
CLIENT_EXT = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature",
              "extendedKeyUsage=clientAuth"]
BOTH_EXT = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature",
            "extendedKeyUsage=serverAuth,clientAuth", HOST_SAN]


def make_pki(directory):
    """Writes a test PKI into `directory` (which must exist) and returns a PKI object."""
    directory = os.path.abspath(directory)
    pki = PKI(directory)
    pki.ca_cert, pki.ca_key = _ca(directory, "ca", "lcmcoord test CA")
    pki.server_cert, pki.server_key = _leaf(directory, "server", "localhost", SERVER_EXT,
                                            pki.ca_cert, pki.ca_key)
    pki.client_cert, pki.client_key = _leaf(directory, "client", CLIENT_CN, CLIENT_EXT,
                                            pki.ca_cert, pki.ca_key)
    pki.expired_cert, pki.expired_key = _leaf(
        directory, "expired", EXPIRED_CN, BOTH_EXT, pki.ca_cert, pki.ca_key,
        start="20200101000000Z", end="20200201000000Z")
    pki.self_signed_cert, pki.self_signed_key = _leaf(
        directory, "self_signed", SELF_SIGNED_CN,
        ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyCertSign",
         "extendedKeyUsage=serverAuth,clientAuth", HOST_SAN], None, None)
    pki.wrong_host_cert, pki.wrong_host_key = _leaf(
        directory, "wrong_host", "wrong.example",
        ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature",
         "extendedKeyUsage=serverAuth", "subjectAltName=DNS:wrong.example"],
        pki.ca_cert, pki.ca_key)
    pki.other_ca_cert, pki.other_ca_key = _ca(directory, "other_ca", "unrelated test CA")
    pki.other_client_cert, pki.other_client_key = _leaf(
        directory, "other_client", OTHER_CLIENT_CN, CLIENT_EXT, pki.other_ca_cert,
        pki.other_ca_key)
    return pki


class WithPki:
    """Mixin for a TestCase class: one test PKI (make_pki) in a temporary directory for the
    whole class, as `cls.pki`."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._pki_dir = tempfile.TemporaryDirectory()
        cls.pki = make_pki(cls._pki_dir.name)

    @classmethod
    def tearDownClass(cls):
        cls._pki_dir.cleanup()
        super().tearDownClass()
