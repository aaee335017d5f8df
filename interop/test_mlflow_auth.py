"""The real `mlflow` client against Freshet with authentication on (issue 12: "the real
`mlflow` client runs the full model workflow with a token and with username/password,
and gets a clear error without them").

The server is `freshet init`'s own configuration (`auth.enabled: true`); tokens are made
with `freshet token create`. The client takes its credentials where a user puts them:
`MLFLOW_TRACKING_TOKEN` (sent as `Authorization: Bearer`), or
`MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD` (HTTP Basic: the token's name and
the token). mlflow reads them on every request, so each test sets its own with
monkeypatch. A data scientist tracks, logs and registers; moving the `champion` alias
is an operator's rollout, so the workflow switches credentials for that one step.
"""

from __future__ import annotations

import contextlib
import json
import time

import mlflow
import numpy as np
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

CRED_VARS = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
# mlflow retries 429 and 5xx answers with backoff (for minutes with the defaults) but not
# 401/403; a refused credential must come back at once, not after that.
QUICK_SECS = 5.0


@pytest.fixture
def no_creds(auth_server, monkeypatch):
    for var in CRED_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def use_token(monkeypatch, token: str) -> None:
    for var in CRED_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)


def use_basic(monkeypatch, user: str, password: str) -> None:
    for var in CRED_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


def audit(auth_server) -> list[dict]:
    r = requests.get(
        f"{auth_server.url}/v1/audit",
        headers={"Authorization": f"Bearer {auth_server.admin_token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def model_workflow(name: str, tmp_path, as_operator) -> str:
    """The workflow of test_mlflow_models.py, run with whatever credentials are set:
    experiment, run with params, metrics, a tag and an artifact, a logged and registered
    sklearn model, the `champion` alias (inside `as_operator()`), and the version loaded
    and downloaded back. Returns the run id."""
    X, y = make_classification(n_samples=300, n_features=5, random_state=11)
    fitted = LogisticRegression(max_iter=500).fit(X, y)
    exp = mlflow.set_experiment(f"{name}-experiment")
    with mlflow.start_run(run_name="with-auth") as run:
        mlflow.log_params({"C": 1.0, "max_iter": 500})
        for step in range(3):
            mlflow.log_metric("train_loss", 1.0 / (step + 1), step=step)
        mlflow.set_tag("team", "risk")
        notes = tmp_path / "notes.txt"
        notes.write_text("trained with a token\n")
        mlflow.log_artifact(str(notes), artifact_path="docs")
        info = mlflow.sklearn.log_model(
            fitted,
            name="model",
            registered_model_name=name,
            signature=infer_signature(X, fitted.predict(X)),
            pip_requirements=["scikit-learn"],
        )
    run_id = run.info.run_id
    client = MlflowClient()

    got = client.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.info.experiment_id == exp.experiment_id
    assert got.data.params == {"C": "1.0", "max_iter": "500"}
    assert got.data.tags["team"] == "risk"
    # A set: log_model re-logs the model's step-0 metrics with its model id, which the
    # tracking store keeps as a second entry (MLflow's own server drops the duplicate).
    assert {m.step for m in client.get_metric_history(run_id, "train_loss")} == {0, 1, 2}

    listed = client.list_artifacts(run_id, "docs")
    assert [a.path for a in listed] == ["docs/notes.txt"]
    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="docs/notes.txt", dst_path=str(tmp_path / "dl")
    )
    assert open(local).read() == "trained with a token\n"

    assert client.get_logged_model(info.model_id).source_run_id == run_id
    versions = client.search_model_versions(f"name='{name}'")
    assert [(v.version, v.run_id) for v in versions] == [("1", run_id)]

    with as_operator():
        client.set_registered_model_alias(name, "champion", "1")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_registered_model(name).aliases == {"champion": "1"}

    champion = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    np.testing.assert_array_equal(champion.predict(X[:50]), fitted.predict(X[:50]))
    files = tmp_path / "version"
    mlflow.artifacts.download_artifacts(f"models:/{name}/1", dst_path=str(files))
    assert (files / "MLmodel").is_file()
    return run_id


def test_full_workflow_with_bearer_tokens(auth_server, no_creds, tmp_path):
    """MLFLOW_TRACKING_TOKEN: a data scientist's token tracks, logs and registers; it
    may not move the alias (a clear PERMISSION_DENIED, at once); an operator's may."""
    monkeypatch = no_creds
    ds = auth_server.create_token("ds-bearer", "data_scientist")
    ops = auth_server.create_token("ops-bearer", "operator")
    use_token(monkeypatch, ds)

    @contextlib.contextmanager
    def as_operator():
        client = MlflowClient()
        t0 = time.monotonic()
        with pytest.raises(MlflowException) as e:
            client.set_registered_model_alias("auth-bearer", "champion", "1")
        assert time.monotonic() - t0 < QUICK_SECS
        assert e.value.error_code == "PERMISSION_DENIED"
        assert "token:ds-bearer may not rollout" in e.value.message
        use_token(monkeypatch, ops)
        yield
        use_token(monkeypatch, ds)

    run_id = model_workflow("auth-bearer", tmp_path, as_operator)

    # The audit names who did what: the run and the version by the data scientist, the
    # alias by the operator, and the data scientist's refused attempt.
    records = audit(auth_server)
    by = {(r["principal"], r["action"], r["outcome"]) for r in records}
    assert ("token:ds-bearer", "track", "succeeded") in by
    assert ("token:ds-bearer", "register", "succeeded") in by
    assert ("token:ds-bearer", "rollout", "denied") in by
    assert ("token:ops-bearer", "rollout", "succeeded") in by
    assert run_id


def test_full_workflow_with_username_and_password(auth_server, no_creds, tmp_path):
    """MLFLOW_TRACKING_USERNAME/PASSWORD (HTTP Basic, the token's name and the token):
    the same workflow passes, the alias step with the operator's name and token."""
    monkeypatch = no_creds
    ds = auth_server.create_token("ds-basic", "data_scientist")
    ops = auth_server.create_token("ops-basic", "operator")
    use_basic(monkeypatch, "ds-basic", ds)

    @contextlib.contextmanager
    def as_operator():
        use_basic(monkeypatch, "ops-basic", ops)
        yield
        use_basic(monkeypatch, "ds-basic", ds)

    model_workflow("auth-basic", tmp_path, as_operator)
    by = {(r["principal"], r["action"], r["outcome"]) for r in audit(auth_server)}
    assert ("token:ds-basic", "register", "succeeded") in by
    assert ("token:ops-basic", "rollout", "succeeded") in by


def refused(call, kind: type[Exception] = MlflowException) -> Exception:
    """Runs `call`, which must raise `kind` quickly, and returns the exception."""
    t0 = time.monotonic()
    with pytest.raises(kind) as e:
        call()
    took = time.monotonic() - t0
    assert took < QUICK_SECS, f"a refused request took {took:.1f}s (retried?)"
    return e.value


def test_without_credentials_the_client_gets_a_clear_401_at_once(auth_server, no_creds, tmp_path):
    """Neither variable set: every call (tracking, registry, the artifact proxy) raises
    an MlflowException that says UNAUTHENTICATED and what to send, without retrying —
    with mlflow's default retry settings, not the fixture's zero — and nothing is made."""
    monkeypatch = no_creds
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", raising=False)
    client = MlflowClient()

    e = refused(lambda: mlflow.set_experiment("no-credentials"))
    assert e.error_code == "UNAUTHENTICATED"
    assert "UNAUTHENTICATED" in str(e) and "credentials required" in str(e)
    assert "Authorization: Bearer" in str(e)

    e = refused(lambda: client.create_registered_model("no-credentials"))
    assert e.error_code == "UNAUTHENTICATED"
    e = refused(lambda: client.search_experiments())
    assert e.error_code == "UNAUTHENTICATED"

    # The artifact proxy refuses as clearly. mlflow's artifact client raises requests'
    # HTTPError here (as it does against MLflow's own server), quoting the body.
    notes = tmp_path / "x.txt"
    notes.write_text("x")
    repo = get_artifact_repository("mlflow-artifacts:/0/no-credentials/artifacts")
    for call in (
        lambda: repo.log_artifact(str(notes)),
        lambda: mlflow.artifacts.download_artifacts(
            artifact_uri="mlflow-artifacts:/0/no-credentials/artifacts", dst_path=str(tmp_path / "d")
        ),
    ):
        e = refused(call, requests.HTTPError)
        assert "401" in str(e) and "UNAUTHENTICATED" in str(e) and "credentials required" in str(e), str(e)
    assert not (auth_server.dir / "data" / "artifacts" / "0" / "no-credentials").exists()

    # Nothing was created.
    admin = MlflowClient()
    use_token(monkeypatch, auth_server.admin_token)
    assert admin.get_experiment_by_name("no-credentials") is None
    assert [m.name for m in admin.search_registered_models("name = 'no-credentials'")] == []


def test_wrong_credentials_get_a_clear_401_at_once(auth_server, no_creds):
    """A wrong password, a user with another token's password, a made-up or revoked
    token: UNAUTHENTICATED ("credentials refused"), at once, never echoing the secret."""
    monkeypatch = no_creds
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    ds = auth_server.create_token("ds-wrong", "data_scientist")
    other = auth_server.create_token("ds-other", "data_scientist")
    bad = "fst_" + "0" * 40
    attempts = [
        ("wrong password", lambda: use_basic(monkeypatch, "ds-wrong", bad)),
        ("another token's password", lambda: use_basic(monkeypatch, "ds-wrong", other)),
        ("unknown user", lambda: use_basic(monkeypatch, "nobody", ds)),
        ("unknown token", lambda: use_token(monkeypatch, bad)),
    ]
    for what, set_creds in attempts:
        set_creds()
        e = refused(lambda: mlflow.set_experiment("wrong-credentials"))
        assert e.error_code == "UNAUTHENTICATED", what
        assert "credentials refused" in str(e), (what, str(e))
        assert bad not in str(e) and other not in str(e) and ds not in str(e), what

    # The right ones work; after revocation the same token is refused.
    use_basic(monkeypatch, "ds-wrong", ds)
    assert mlflow.set_experiment("wrong-credentials").name == "wrong-credentials"
    r = requests.delete(
        f"{auth_server.url}/v1/tokens/ds-wrong",
        headers={"Authorization": f"Bearer {auth_server.admin_token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    for set_creds in (lambda: use_basic(monkeypatch, "ds-wrong", ds), lambda: use_token(monkeypatch, ds)):
        set_creds()
        e = refused(lambda: MlflowClient().search_experiments())
        assert e.error_code == "UNAUTHENTICATED" and "credentials refused" in str(e)

    records = audit(auth_server)
    assert any(r["outcome"] == "unauthenticated" for r in records)
    text = json.dumps(records)
    assert bad not in text and ds not in text and other not in text


def grant(auth_server, token: str, op: str, body: dict) -> requests.Response:
    """MLflow 3's per-user permission API, with the body its `AuthServiceClient` sends
    (`grant_user_permission` / `revoke_user_permission`: POST
    /api/3.0/mlflow/users/permissions/{grant,revoke} with username, resource_type,
    resource_id and permission). That client cannot be imported without the full
    `mlflow` server package (flask, sqlalchemy), so the request is made directly."""
    return requests.post(
        f"{auth_server.url}/api/3.0/mlflow/users/permissions/{op}",
        headers={"Authorization": f"Bearer {token}"},
        json=body,
        timeout=30,
    )


def test_scoped_teams_see_only_their_objects_until_shared(auth_server, no_creds, tmp_path):
    """MLflow's per-object permissions with the real client: a data scientist scoped to
    `team-a-*` runs the whole model workflow; one scoped to `team-b-*` finds none of it
    in searches and is refused each read (PERMISSION_DENIED, at once); the creator
    shares the experiment and the model with READ, after which team B reads the run and
    loads the model but still may not write to it."""
    monkeypatch = no_creds
    a = auth_server.create_token(
        "team-a", "data_scientist", scopes=("experiment:team-a-*", "model:team-a-*")
    )
    ops = auth_server.create_token("team-a-ops", "operator", scopes=("model:team-a-*",))
    b = auth_server.create_token(
        "team-b", "data_scientist", scopes=("experiment:team-b-*", "model:team-b-*")
    )
    use_token(monkeypatch, a)

    @contextlib.contextmanager
    def as_operator():
        use_token(monkeypatch, ops)
        yield
        use_token(monkeypatch, a)

    run_id = model_workflow("team-a-model", tmp_path, as_operator)
    client = MlflowClient()
    exp_id = client.get_run(run_id).info.experiment_id
    assert {e.name for e in client.search_experiments()} == {"team-a-model-experiment"}
    e = refused(lambda: mlflow.set_experiment("team-b-by-a"))
    assert e.error_code == "PERMISSION_DENIED"

    use_token(monkeypatch, b)
    mlflow.set_experiment("team-b-own")
    client = MlflowClient()
    assert {e.name for e in client.search_experiments()} == {"team-b-own"}
    assert [m.name for m in client.search_registered_models()] == []
    assert client.search_runs([exp_id]) == []
    for call in (
        lambda: client.get_run(run_id),
        lambda: client.get_registered_model("team-a-model"),
        lambda: client.log_metric(run_id, "sneaky", 1.0),
    ):
        assert refused(call).error_code == "PERMISSION_DENIED"
    e = refused(lambda: mlflow.pyfunc.load_model("models:/team-a-model/1"))
    assert "PERMISSION_DENIED" in str(e)

    # Only a MANAGE holder shares; the creator is one.
    share = {"username": "team-b", "resource_type": "experiment", "resource_id": exp_id, "permission": "READ"}
    r = grant(auth_server, b, "grant", share)
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", r.text
    for body in (share, {**share, "resource_type": "registered_model", "resource_id": "team-a-model"}):
        r = grant(auth_server, a, "grant", body)
        assert r.status_code == 200, r.text

    assert client.get_run(run_id).data.params == {"C": "1.0", "max_iter": "500"}
    assert [r.info.run_id for r in client.search_runs([exp_id])] == [run_id]
    assert [m.name for m in client.search_registered_models()] == ["team-a-model"]
    X, _ = make_classification(n_samples=20, n_features=5, random_state=11)
    assert len(mlflow.pyfunc.load_model("models:/team-a-model/1").predict(X)) == 20
    assert refused(lambda: client.log_metric(run_id, "sneaky", 1.0)).error_code == "PERMISSION_DENIED"

    r = grant(auth_server, a, "revoke", {k: v for k, v in share.items() if k != "permission"})
    assert r.status_code == 200, r.text
    assert refused(lambda: client.get_run(run_id)).error_code == "PERMISSION_DENIED"

    records = audit(auth_server)
    assert any(
        r["principal"] == "token:team-b" and r["resource"] == "experiment:team-a-model-experiment"
        and r["outcome"] == "denied"
        for r in records
    )
