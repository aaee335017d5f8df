"""The real `mlflow` client (3.x) against Freshet's MLflow-compatible tracking API.

Starts the `freshet` binary (FRESHET_BIN) with an empty registry, points
MLFLOW_TRACKING_URI at it, and drives experiments, runs, params, metrics with steps,
tags and metric history through the client exactly as a data scientist would.
"""

from __future__ import annotations

import math

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient


def test_fluent_api_round_trip(server):
    exp = mlflow.set_experiment("fraud-detection")
    assert exp.name == "fraud-detection"
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_param("learner", "logistic")
        mlflow.log_params({"lr": 0.01, "l2": 0.0})
        for step in range(5):
            mlflow.log_metric("auc", 0.8 + step / 100, step=step)
        mlflow.log_metrics({"accuracy": 0.93, "log_loss": 0.21})
        mlflow.set_tag("stream", "cards")
        run_id = run.info.run_id

    client = MlflowClient()
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "baseline"
    assert got.info.experiment_id == exp.experiment_id
    assert got.data.params == {"learner": "logistic", "lr": "0.01", "l2": "0.0"}
    assert got.data.metrics["auc"] == pytest.approx(0.84)
    assert got.data.metrics["accuracy"] == pytest.approx(0.93)
    assert got.data.tags["stream"] == "cards"

    history = client.get_metric_history(run_id, "auc")
    assert [m.step for m in history] == [0, 1, 2, 3, 4]
    assert [m.value for m in history] == pytest.approx([0.8, 0.81, 0.82, 0.83, 0.84])

    # The same experiment is found again by name, not created twice.
    assert mlflow.set_experiment("fraud-detection").experiment_id == exp.experiment_id
    assert client.get_experiment_by_name("fraud-detection").experiment_id == exp.experiment_id


def test_client_api_and_errors(server):
    client = MlflowClient()
    exp_id = client.create_experiment("errors", tags={"team": "risk"})
    assert client.get_experiment(exp_id).tags == {"team": "risk"}
    with pytest.raises(MlflowException) as e:
        client.create_experiment("errors")
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as e:
        client.get_run("0123456789abcdef0123456789abcdef")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    run = client.create_run(exp_id)
    client.log_param(run.info.run_id, "k", "v1")
    with pytest.raises(MlflowException) as e:
        client.log_param(run.info.run_id, "k", "v2")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    client.log_metric(run.info.run_id, "nan_metric", float("nan"))
    assert math.isnan(client.get_run(run.info.run_id).data.metrics["nan_metric"])
    client.set_tag(run.info.run_id, "t", "1")
    client.delete_tag(run.info.run_id, "t")
    assert "t" not in client.get_run(run.info.run_id).data.tags

    # MLflow's batch limit: the raw REST call, so the client cannot split it for us.
    body = {"run_id": run.info.run_id,
            "metrics": [{"key": f"m{i}", "value": 1.0, "timestamp": 0, "step": 0} for i in range(1001)]}
    r = requests.post(f"{server}/api/2.0/mlflow/runs/log-batch", json=body)
    assert r.status_code == 400
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    client.set_terminated(run.info.run_id, status="FAILED")
    assert client.get_run(run.info.run_id).info.status == "FAILED"
    client.delete_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"


def test_search_runs_with_filter_and_order(server):
    exp_id = mlflow.set_experiment("search").experiment_id
    for i in range(12):
        with mlflow.start_run(run_name=f"r{i}"):
            mlflow.log_param("kind", "tree" if i % 3 == 0 else "linear")
            mlflow.log_metric("auc", i / 100)
    client = MlflowClient()
    runs = client.search_runs(
        experiment_ids=[exp_id],
        filter_string="metrics.auc > 0.04 and params.kind = 'linear'",
        order_by=["metrics.auc DESC"],
    )
    assert [r.data.metrics["auc"] for r in runs] == pytest.approx([0.11, 0.10, 0.08, 0.07, 0.05])
    page = client.search_runs([exp_id], "params.kind = 'tree'", max_results=2)
    assert len(page) == 2 and page.token
    rest = client.search_runs([exp_id], "params.kind = 'tree'", max_results=2, page_token=page.token)
    assert len(rest) == 2
    assert {r.info.run_id for r in page}.isdisjoint({r.info.run_id for r in rest})
    with pytest.raises(MlflowException) as e:
        client.search_runs([exp_id], "metrics.auc > 'high'")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
