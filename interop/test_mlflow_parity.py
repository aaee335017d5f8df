"""MLflow REST parity as the real client notices it (issue 15): registered-model search
with the filter every MLflow 3 client adds, `GET /version`, deleting an experiment tag —
and the Open Inference Protocol's error body on `/v2`. Written from MLflow's documented
behaviour: a model without a tag is "not equal" to any value of it."""

from __future__ import annotations

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient


def test_search_registered_models_finds_untagged_models_with_the_clients_filter(server):
    client = MlflowClient()
    client.create_registered_model("parity-plain")
    client.create_registered_model("parity-tagged", tags={"team": "risk"})
    # The client adds ``tag.`mlflow.prompt.is_prompt` != 'true'`` to every search.
    found = {m.name for m in client.search_registered_models()}
    assert {"parity-plain", "parity-tagged"} <= found
    assert [m.name for m in client.search_registered_models("name = 'parity-plain'")] == ["parity-plain"]
    assert [m.name for m in client.search_registered_models("tags.team = 'risk'")] == ["parity-tagged"]
    assert [m.name for m in mlflow.search_registered_models(filter_string="name LIKE 'parity-%'")] == [
        "parity-plain",
        "parity-tagged",
    ]
    # A prompt (registered over REST: the client refuses to make one a model) is left
    # out, as MLflow does.
    r = requests.post(
        f"{server}/api/2.0/mlflow/registered-models/create",
        json={"name": "parity-prompt", "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert "parity-prompt" not in {m.name for m in client.search_registered_models()}


def test_version_names_the_mlflow_release_served(server):
    r = requests.get(f"{server}/version", timeout=10)
    assert r.status_code == 200
    assert r.text == mlflow.__version__


def test_an_experiment_tag_is_deleted_and_a_missing_one_is_not_found(server):
    client = MlflowClient()
    exp = client.create_experiment("parity-tags", tags={"a": "1", "b": "2"})
    client.delete_experiment_tag(exp, "a")
    assert client.get_experiment(exp).tags == {"b": "2"}
    with pytest.raises(MlflowException) as e:
        client.delete_experiment_tag(exp, "a")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "No tag with name: a" in e.value.message


def test_open_inference_protocol_errors_use_the_specs_body(server):
    r = requests.post(f"{server}/v2/models/not-served/infer", json={"inputs": []}, timeout=10)
    assert r.status_code == 404
    body = r.json()
    assert isinstance(body["error"], str) and "not-served" in body["error"], body


def test_experiment_search_takes_filter_and_order_and_lists_newest_first(server):
    import time

    client = MlflowClient()
    client.create_experiment("parity-search-a")
    time.sleep(0.01)
    client.create_experiment("parity-search-b", tags={"team": "risk"})
    names = lambda **kw: [e.name for e in client.search_experiments(**kw)]  # noqa: E731
    assert names(filter_string="name LIKE 'parity-search-%'") == ["parity-search-b", "parity-search-a"]
    assert names(filter_string="name LIKE 'parity-search-%'", order_by=["name ASC"]) == [
        "parity-search-a",
        "parity-search-b",
    ]
    assert names(filter_string="tags.team = 'risk'") == ["parity-search-b"]
    with pytest.raises(MlflowException) as e:
        client.search_experiments(filter_string="owner = 'x'")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_a_runs_and_a_versions_files_through_mlflows_own_routes(server):
    client = MlflowClient()
    exp = client.create_experiment("parity-artifacts")
    run = client.create_run(exp)
    client.log_text(run.info.run_id, "trained on synthetic data\n", "docs/notes.txt")
    client.log_text(run.info.run_id, "{}", "conf.json")

    r = requests.get(f"{server}/api/2.0/mlflow/artifacts/list", params={"run_id": run.info.run_id}, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["root_uri"] == run.info.artifact_uri
    assert [(f["path"], f["is_dir"]) for f in body["files"]] == [("conf.json", False), ("docs", True)]
    r = requests.get(
        f"{server}/api/2.0/mlflow/artifacts/list", params={"run_id": run.info.run_id, "path": "docs"}, timeout=10
    )
    assert r.json()["files"] == [{"path": "docs/notes.txt", "is_dir": False, "file_size": 26}]

    r = requests.get(f"{server}/get-artifact", params={"run_id": run.info.run_id, "path": "docs/notes.txt"}, timeout=10)
    assert (r.status_code, r.text) == (200, "trained on synthetic data\n")
    r = requests.get(f"{server}/get-artifact", params={"run_id": run.info.run_id, "path": "../../x"}, timeout=10)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", r.text

    client.create_registered_model("parity-files")
    mv = client.create_model_version("parity-files", f"runs:/{run.info.run_id}/docs", run_id=run.info.run_id)
    r = requests.get(
        f"{server}/model-versions/get-artifact",
        params={"name": "parity-files", "version": mv.version, "path": "notes.txt"},
        timeout=10,
    )
    assert (r.status_code, r.text) == (200, "trained on synthetic data\n")
    r = requests.get(
        f"{server}/model-versions/get-artifact",
        params={"name": "parity-files", "version": "99", "path": "notes.txt"},
        timeout=10,
    )
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", r.text


def test_what_freshet_does_not_serve_answers_in_mlflows_error_shape(server):
    for method, path in [
        ("POST", "/api/2.0/mlflow/traces"),
        ("GET", "/api/2.0/mlflow/gateway/routes"),
        ("POST", "/api/3.0/mlflow/traces/search"),
    ]:
        r = requests.request(method, f"{server}{path}", json={}, timeout=10)
        assert r.status_code == 501, (path, r.status_code, r.text)
        assert r.json()["error_code"] == "NOT_IMPLEMENTED", r.text
    with pytest.raises(MlflowException) as e:
        mlflow.search_traces(locations=["0"])
    assert "not implemented" in str(e.value).lower() or e.value.error_code == "NOT_IMPLEMENTED"


def test_a_logged_models_metrics_inputs_outputs_and_versions_are_linked(server):
    import json

    from mlflow.entities import LoggedModelInput, LoggedModelOutput

    client = MlflowClient()
    exp = client.create_experiment("parity-logged")
    run = client.create_run(exp)
    run_id = run.info.run_id
    model = client.create_logged_model(experiment_id=exp, name="scorer", source_run_id=run_id)
    client.log_metric(run_id, "auc", 0.91, step=1, model_id=model.model_id)
    client.log_metric(run_id, "loss", 0.4)  # a run metric only
    got = client.get_logged_model(model.model_id)
    assert [(m.key, m.value, m.step, m.run_id) for m in got.metrics] == [("auc", 0.91, 1, run_id)]
    assert client.get_run(run_id).data.metrics == {"auc": 0.91, "loss": 0.4}

    reader = client.create_run(exp)
    client.log_inputs(reader.info.run_id, models=[LoggedModelInput(model.model_id)])
    client.log_outputs(run_id, models=[LoggedModelOutput(model.model_id, step=1)])
    assert [m.model_id for m in client.get_run(reader.info.run_id).inputs.model_inputs] == [model.model_id]
    outputs = client.get_run(run_id).outputs.model_outputs
    assert [(o.model_id, o.step) for o in outputs] == [(model.model_id, 1)]

    client.create_registered_model("parity-logged")
    v = client.create_model_version("parity-logged", f"models:/{model.model_id}", model_id=model.model_id)
    tag = client.get_logged_model(model.model_id).tags["mlflow.modelVersions"]
    assert json.loads(tag) == [{"name": "parity-logged", "version": int(v.version)}]
    with pytest.raises(MlflowException) as e:
        client.log_metric(run_id, "f1", 0.5, model_id="m-does-not-exist")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "f1" not in client.get_run(run_id).data.metrics, "nothing is written on a refusal"


def test_bulk_metric_history_over_several_runs(server):
    client = MlflowClient()
    exp = client.create_experiment("parity-bulk")
    runs = [client.create_run(exp).info.run_id for _ in range(2)]
    for i, run_id in enumerate(runs):
        for step in range(3):
            client.log_metric(run_id, "loss", 1.0 / (step + 1 + i), step=step)
    r = requests.get(
        f"{server}/ajax-api/2.0/mlflow/metrics/get-history-bulk",
        params=[("run_id", runs[0]), ("run_id", runs[1]), ("metric_key", "loss")],
        timeout=10,
    )
    assert r.status_code == 200, r.text
    points = [(m["run_id"], m["step"], m["value"]) for m in r.json()["metrics"]]
    assert points == [(run, s, 1.0 / (s + 1 + i)) for i, run in enumerate(runs) for s in range(3)]
    r = requests.get(f"{server}/ajax-api/2.0/mlflow/metrics/get-history-bulk", params={"metric_key": "loss"}, timeout=10)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", r.text


def test_search_datasets_lists_what_an_experiments_runs_read(server):
    from mlflow.entities import Dataset, DatasetInput, InputTag

    client = MlflowClient()
    exp = client.create_experiment("parity-datasets")
    run = client.create_run(exp)
    ds = Dataset(name="events/cards", digest="v7", source_type="delta_table", source="{}")
    client.log_inputs(
        run.info.run_id, datasets=[DatasetInput(ds, tags=[InputTag("mlflow.data.context", "training")])]
    )
    r = requests.post(
        f"{server}/ajax-api/2.0/mlflow/experiments/search-datasets", json={"experiment_ids": [exp]}, timeout=10
    )
    assert r.status_code == 200, r.text
    assert r.json()["dataset_summaries"] == [
        {"experiment_id": exp, "name": "events/cards", "digest": "v7", "context": "training"}
    ]
