"""The real `mlflow` client's model workflow against Freshet: artifacts through the
mlflow-artifacts proxy, `mlflow.sklearn.log_model` with registration (MLflow 3 logged
models), aliases, `mlflow.pyfunc.load_model("models:/<name>@champion")` predicting, and
version search — then the bad requests a hostile or careless client could send.
"""

from __future__ import annotations

import http.client
import json
import os
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
