"""The real `mlflow` client's model workflow against Freshet: artifacts through the
mlflow-artifacts proxy, `mlflow.sklearn.log_model` with registration (MLflow 3 logged
models), aliases, `mlflow.pyfunc.load_model("models:/<name>@champion")` predicting, and
version search — then the bad requests a hostile or careless client could send.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

NAME = "interop-fraud"


def server_root(server: str) -> Path:
    """The artifact directory of the fixture's server."""
    return Path(os.environ["FRESHET_TEST_DIR"]) / "freshet-data" / "artifacts"


def _train():
    X, y = make_classification(n_samples=400, n_features=6, random_state=7)
    return X, y


def test_sklearn_model_registry_round_trip(server, tmp_path):
    X, y = _train()
    first = LogisticRegression(max_iter=500).fit(X, y)
    mlflow.set_experiment("interop-models")
    with mlflow.start_run(run_name="logistic") as run:
        mlflow.log_params({"C": 1.0, "max_iter": 500})
        for step in range(3):
            mlflow.log_metric("train_loss", 1.0 / (step + 1), step=step)
        mlflow.set_tag("team", "risk")
        notes = tmp_path / "notes.txt"
        notes.write_text("trained on synthetic data\n")
        mlflow.log_artifact(str(notes), artifact_path="docs")
        info = mlflow.sklearn.log_model(
            first,
            name="model",
            registered_model_name=NAME,
            signature=infer_signature(X, first.predict(X)),
            pip_requirements=["scikit-learn"],
        )
    client = MlflowClient()

    # Run artifacts: listed and downloaded through the proxy.
    listed = client.list_artifacts(run.info.run_id, "docs")
    assert [(a.path, a.is_dir, a.file_size) for a in listed] == [
        ("docs/notes.txt", False, len("trained on synthetic data\n"))
    ]
    local = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="docs/notes.txt", dst_path=str(tmp_path / "dl")
    )
    assert open(local).read() == "trained on synthetic data\n"

    # The logged model is ready, belongs to the run and is registered as version 1.
    logged = client.get_logged_model(info.model_id)
    assert logged.status.to_proto() == 2 or str(logged.status).endswith("READY")
    assert logged.source_run_id == run.info.run_id
    versions = client.search_model_versions(f"name='{NAME}'")
    assert [v.version for v in versions] == ["1"]
    assert versions[0].run_id == run.info.run_id

    client.set_registered_model_alias(NAME, "champion", "1")
    champion = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    np.testing.assert_array_equal(champion.predict(X[:50]), first.predict(X[:50]))

    # A second version takes the alias; loading by alias follows it.
    second = LogisticRegression(C=0.001, max_iter=500).fit(X[:, :2], y)
    with mlflow.start_run(run_name="narrow"):
        mlflow.sklearn.log_model(
            second, name="model", registered_model_name=NAME, pip_requirements=["scikit-learn"]
        )
    client.set_registered_model_alias(NAME, "champion", "2")
    assert client.get_model_version_by_alias(NAME, "champion").version == "2"
    moved = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    np.testing.assert_array_equal(moved.predict(X[:50, :2]), second.predict(X[:50, :2]))
    assert [v.version for v in client.search_model_versions(f"name='{NAME}'", order_by=["version_number DESC"])] == ["2", "1"]
    model = client.get_registered_model(NAME)
    assert model.aliases == {"champion": "2"}

    # Stages still work for older workflows.
    client.transition_model_version_stage(NAME, "1", "Production")
    assert [v.version for v in client.get_latest_versions(NAME, stages=["Production"])] == ["1"]
    uri = client.get_model_version_download_uri(NAME, "1")
    assert uri.startswith("mlflow-artifacts:/")


def test_registry_errors_are_clear_4xx(server):
    client = MlflowClient()
    with pytest.raises(MlflowException) as e:
        client.get_registered_model("no-such-model")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.create_registered_model("dupe")
    with pytest.raises(MlflowException) as e:
        client.create_registered_model("dupe")
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as e:
        client.set_registered_model_alias("dupe", "champion", "7")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    base = f"{server}/api/2.0/mlflow-artifacts/artifacts"
    # Sent byte for byte (requests would normalise dot segments away).
    host = server.removeprefix("http://")
    for bad in ["../secret", "%2e%2e/secret", "a/%2E%2E/%2E%2E/secret", "a/./b", "a//b", "a/..%5c..%5cx"]:
        conn = http.client.HTTPConnection(host, timeout=10)
        conn.request("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{bad}", body=b"x")
        r = conn.getresponse()
        body = json.loads(r.read())
        conn.close()
        assert r.status in (400, 404), (bad, r.status, body)
        if r.status == 400:
            assert body["error_code"] == "INVALID_PARAMETER_VALUE", body
    root = server_root(server)
    assert not (root.parent / "secret").exists() and not (root / "secret").exists()
    r = requests.get(base, params={"path": "/etc"})
    assert r.status_code == 400
    r = requests.get(base, params={"path": "../.."})
    assert r.status_code == 400
    r = requests.get(f"{base}/0/nothing-here.txt")
    assert r.status_code == 404
    r = requests.post(
        f"{server}/api/2.0/mlflow/model-versions/create",
        json={"name": "dupe", "source": "/etc/passwd"},
    )
    assert r.status_code == 400 and "source" in r.json()["message"]
    r = requests.post(
        f"{server}/api/2.0/mlflow/model-versions/create",
        json={"name": "dupe", "source": "file:///etc"},
    )
    assert r.status_code == 400


def test_a_version_trained_by_freshet_is_visible_to_the_client(server, tmp_path):
    rng = np.random.default_rng(3)
    lines = []
    for _ in range(3000):
        fraud = bool(rng.random() < 0.2)
        amount = float(rng.normal(900 if fraud else 60, 80))
        merchant = str(rng.choice(["grocery", "fuel", "travel"]))
        lines.append(json.dumps({"amount": amount, "merchant": merchant, "is_fraud": fraud}))
    r = requests.post(
        f"{server}/v1/streams/pay/events",
        data="\n".join(lines),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 200, r.text
    config = Path(os.environ["FRESHET_TEST_DIR"]) / "freshet.yaml"
    out = subprocess.run(
        [os.environ["FRESHET_BIN"], "--config", str(config), "train", "fraud", "--quiet"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr

    client = MlflowClient()
    (version,) = client.search_model_versions("name='fraud'")
    assert version.version == "1" and version.tags["freshet.table"] == "events/pay"
    run = client.get_run(version.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["holdout_accuracy"] > 0.9
    assert 0.9 < run.data.metrics["holdout_roc_auc"] <= 1.0
    assert run.data.params["learner"] == "logistic_regression"
    assert run.data.params["holdout_rows"] == "600"
    (dataset,) = run.inputs.dataset_inputs
    source = json.loads(dataset.dataset.source)
    assert source["delta_table_version"] == int(version.tags["freshet.table_version"]) >= 1
    assert dataset.dataset.name == "events/pay"

    local = Path(mlflow.artifacts.download_artifacts(f"models:/fraud/{version.version}", dst_path=str(tmp_path / "m")))
    assert {"MLmodel", "model.json", "reference_profile.json"} <= {p.name for p in local.iterdir()}
    mlmodel = (local / "MLmodel").read_text()
    assert "freshet" in mlmodel and "signature" in mlmodel
