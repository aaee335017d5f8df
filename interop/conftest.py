"""Shared fixtures: a `freshet up` child process with an empty registry, and the MLflow
client pointed at it — one without authentication (`server`) and one with it on
(`auth_server`).

`server` runs each module twice: on the SQLite registry, and on a Postgres registry
(`registry.url`, a throwaway PostgreSQL from Debian's packages), so every MLflow client
workflow is checked against both stores."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import requests

CONFIG = """
lake: { path: data/lake }
registry: { path: data/registry.db }
streams:
  unused:
    source: { type: http }
    schema: { fields: [ { name: x, type: int } ] }
  pay:
    source: { type: http }
    schema:
      fields:
        - { name: amount, type: float }
        - { name: merchant, type: string }
        - { name: is_fraud, type: bool }
models:
  fraud:
    stream: pay
    label: is_fraud
    learner: { type: logistic_regression }
    # The loop must not train its own versions while these tests train with the CLI.
    triggers: { initial_rows: 1000000000, concept_drift: none }
"""


def _binary() -> str:
    binary = os.environ.get("FRESHET_BIN")
    if not binary:
        pytest.fail("set FRESHET_BIN to the freshet binary")
    return binary


def _up(binary: str, d: Path) -> tuple[subprocess.Popen, str]:
    """`freshet up` on d/freshet.yaml, HTTP sources only, on an ephemeral port; returns
    the process and its base URL once /readyz answers 200."""
    addr_file = d / "addr"
    log = open(d / "server.log", "w")
    proc = subprocess.Popen(
        [binary, "--config", str(d / "freshet.yaml"), "up", "--listen", "127.0.0.1:0",
         "--addr-file", str(addr_file), "--no-sources"],
        stdout=log, stderr=log,
    )
    deadline = time.time() + 30
    while not (addr_file.exists() and addr_file.read_text()):
        if time.time() > deadline or proc.poll() is not None:
            raise RuntimeError((d / "server.log").read_text())
        time.sleep(0.05)
    url = f"http://{addr_file.read_text().strip()}"
    while requests.get(f"{url}/readyz").status_code != 200:
        if time.time() > deadline or proc.poll() is not None:
            raise RuntimeError((d / "server.log").read_text())
        time.sleep(0.05)
    return proc, url


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, tmp_path_factory):
    binary = _binary()
    d: Path = tmp_path_factory.mktemp("mlflow")
    pg = None
    config = CONFIG
    if request.param == "postgres":
        from pg_server import PASSWORD, Postgres

        pg = Postgres()
        config = CONFIG.replace("registry: { path: data/registry.db }", f"registry: {{ url: '{pg.url}' }}")
    (d / "freshet.yaml").write_text(config)
    try:
        proc, url = _up(binary, d)
    except BaseException:
        if pg is not None:
            pg.close()
        raise
    os.environ["FRESHET_TEST_DIR"] = str(d)
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = url
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    mlflow.set_tracking_uri(url)
    yield url
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    if old is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    if pg is not None:
        pg.close()
        # The database password is in the configuration, never in what the node says.
        assert PASSWORD not in (d / "server.log").read_text()


@dataclass
class AuthServer:
    """A running server with `auth.enabled: true` and the way to mint its tokens."""

    url: str
    dir: Path
    config: Path
    admin_token: str

    def create_token(self, name: str, *roles: str, scopes: tuple[str, ...] = ()) -> str:
        """A new API token, made the way an operator would: `freshet token create`,
        which reads the admin token from the file `freshet init` wrote; `scopes` limit
        its roles to matching streams, models and experiments."""
        env = {k: v for k, v in os.environ.items() if k not in ("FRESHET_TOKEN", "FRESHET_URL")}
        args = [_binary(), "--config", str(self.config), "token", "create", name, "--url", self.url]
        for role in roles:
            args += ["--role", role]
        for scope in scopes:
            args += ["--scope", scope]
        out = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
        assert out.returncode == 0, out.stderr
        token = out.stdout.strip()
        assert token.startswith("fst_"), out.stdout
        return token


@contextmanager
def running_auth_server(d: Path, streams: str | None = None):
    """`freshet init`'s own configuration in `d` (authentication on, an admin token in
    .freshet/admin.token), its `streams:` and `models:` replaced by `streams` when given,
    served with `freshet up` until the block ends."""
    binary = _binary()
    out = subprocess.run([binary, "init", "--dir", str(d)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    config = d / "freshet.yaml"
    assert "enabled: true" in config.read_text()
    if streams is not None:
        text = config.read_text()
        config.write_text(text[: text.index("\nstreams:") + 1] + streams)
    admin = (d / ".freshet" / "admin.token").read_text().strip()
    proc, url = _up(binary, d)
    try:
        yield AuthServer(url=url, dir=d, config=config, admin_token=admin)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """`freshet init`'s own configuration, served, the MLflow client pointed at it and no
    credentials set: each test sets the ones it means to use."""
    d: Path = tmp_path_factory.mktemp("mlflow-auth")
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_HTTP_REQUEST_MAX_RETRIES")}
    with running_auth_server(d) as srv:
        os.environ["MLFLOW_TRACKING_URI"] = srv.url
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
        mlflow.set_tracking_uri(srv.url)
        try:
            yield srv
        finally:
            # set_tracking_uri(None) also unsets MLFLOW_TRACKING_URI.
            mlflow.set_tracking_uri(saved["MLFLOW_TRACKING_URI"])
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
