"""A PostgreSQL test server for the interop tests: Debian's PostgreSQL packages, a fresh
cluster in the test's temporary folder, `wal_level = logical`, on 127.0.0.1, with
password (SCRAM) authentication over TCP so a test can check the password never leaks.

With `tls=True` the server has a certificate for 127.0.0.1 signed by a throwaway CA
(`ca_file`), and refuses TCP connections without TLS.

Postgres refuses to run as root; when the tests run as root the cluster is owned by
and run as the `postgres` user the Debian package creates. Unlike the Kafka test
broker, the data survives `restart()`.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from kafka_broker import free_port, wait_port

USER = "freshet"
PASSWORD = "pw-Kq83-never-logged"


def bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql); .ci/run installs it")


def _write_tls_files(root: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 it signed: (ca.pem, server.crt, server.key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "freshet test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file, crt, key_file = root / "ca.pem", root / "server.crt", root / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return ca_file, crt, key_file


class Postgres:
    def __init__(self, start: bool = True, tls: bool = False, extra_args: list[str] | None = None):
        # Its own folder under /tmp: pytest's tmp_path is private to the user running
        # the tests, and the server may run as another.
        self.root = Path(tempfile.mkdtemp(prefix="freshet-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.bin = bin_dir()
        self.proc: subprocess.Popen | None = None
        self._as_user = ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups"] if os.geteuid() == 0 else []
        if self._as_user:
            shutil.chown(self.root, "postgres")
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as_user:
            shutil.chown(pwfile, "postgres")
        subprocess.run(
            [*self._as_user, str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "-E", "UTF8",
             "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "--no-sync"],
            check=True, capture_output=True, timeout=120,
        )
        self.tls_args: list[str] = list(extra_args or [])
        self.ca_file: Path | None = None
        if tls:
            self.ca_file, crt, key = _write_tls_files(self.root)
            if self._as_user:
                for f in (crt, key):
                    shutil.chown(f, "postgres")
            self.tls_args += ["-c", "ssl=on", "-c", f"ssl_cert_file={crt}", "-c", f"ssl_key_file={key}"]
            # TCP only with TLS: a client that does not ask for it is turned away.
            hba = self.data / "pg_hba.conf"
            lines = [ln.replace("host ", "hostssl ", 1) if ln.startswith("host ") else ln
                     for ln in hba.read_text().splitlines()]
            lines += ["hostnossl all all 0.0.0.0/0 reject", "hostnossl all all ::/0 reject"]
            hba.write_text("\n".join(lines) + "\n")
        if start:
            self.start()

    @property
    def url(self) -> str:
        return f"postgres://{USER}:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={USER} password={PASSWORD} dbname=postgres"

    def start(self) -> None:
        log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(
            [*self._as_user, str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-k", str(self.root), "-c", "listen_addresses=127.0.0.1", "-c", "wal_level=logical",
             "-c", "max_replication_slots=8", "-c", "max_wal_senders=8", "-c", "fsync=off",
             "-c", "shared_buffers=128MB", *self.tls_args],
            stdout=log, stderr=subprocess.STDOUT,
        )
        wait_port(self.port, 60)
        # The port opens before the server accepts queries.
        deadline = time.time() + 30
        while time.time() < deadline:
            r = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                               capture_output=True)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("postgres did not become ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # The fast shutdown: clients are disconnected, the data stays.
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def restart(self) -> None:
        self.stop()
        self.start()
