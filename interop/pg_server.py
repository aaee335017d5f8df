"""A PostgreSQL test server for the interop tests: Debian's PostgreSQL packages, a fresh
cluster in the test's temporary folder, `wal_level = logical`, on 127.0.0.1, with
password (SCRAM) authentication over TCP so a test can check the password never leaks.

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


class Postgres:
    def __init__(self, start: bool = True):
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
             "-c", "shared_buffers=128MB"],
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
