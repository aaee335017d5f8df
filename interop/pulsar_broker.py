"""A Pulsar-protocol test broker for the interop tests: `pulsar-lite` (the prebuilt
binary inside the PyPI package of that name), RocksDB storage in a folder of the test's,
on 127.0.0.1. Its data survives a restart, so a test can kill the broker (SIGKILL) and
start it again on the same port and folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from kafka_broker import free_port, wait_port
from pulsar_lite.binary_finder import find_pulsar_lite_binary


class PulsarBroker:
    """pulsar-lite on a free port; `kill()` and `start()` it at will."""

    def __init__(self, root: Path, start: bool = True):
        self.root = root
        self.port = free_port()
        self.url = f"pulsar://127.0.0.1:{self.port}"
        self.db = root / "pulsar-db"
        self.proc: subprocess.Popen | None = None
        if start:
            self.start()

    def start(self) -> None:
        log = open(self.root / "pulsar-lite.log", "ab")
        self.proc = subprocess.Popen(
            [find_pulsar_lite_binary(), "--addr", f"127.0.0.1:{self.port}", "--db-path", str(self.db),
             "--log-level", os.environ.get("PULSAR_LITE_LOG_LEVEL", "warn")],
            cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
        )
        wait_port(self.port)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
        self.proc = None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
