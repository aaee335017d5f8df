"""Shared fixtures: a `freshet up` child process with an empty registry, and the MLflow
client pointed at it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    binary = os.environ.get("FRESHET_BIN")
    if not binary:
        pytest.fail("set FRESHET_BIN to the freshet binary")
    d: Path = tmp_path_factory.mktemp("mlflow")
    (d / "freshet.yaml").write_text(CONFIG)
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
    os.environ["FRESHET_TEST_DIR"] = str(d)
    while requests.get(f"{url}/readyz").status_code != 200:
        time.sleep(0.05)
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = url
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    mlflow.set_tracking_uri(url)
    yield url
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    if old is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)


