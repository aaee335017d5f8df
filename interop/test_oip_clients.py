"""Triton's own client against a Freshet model over the Open Inference Protocol
(issue 15: "tritonclient infers with JSON and binary tensors, and reads a 4xx error").

`tritonclient.http` sends input tensors with the binary data extension by default
(`Inference-Header-Content-Length`, raw little-endian elements, BYTES length-prefixed)
and, when no outputs are named, asks for every output as binary data; named outputs
choose per output. The model is a logistic regression trained with `freshet train` on
a stream where the label is `amount > 600`, so the expected answers are known.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import requests
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from test_kafka import Freshet
from test_kafka_bind import cli

CONFIG = """\
lake: { path: lake, compaction: { enabled: false } }
registry: { path: registry.db }
streams:
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
    triggers: { initial_rows: 1000000000, concept_drift: none }
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root: Path = tmp_path_factory.mktemp("oip")
    (root / "freshet.yaml").write_text(CONFIG)
    rows = ["amount,merchant,is_fraud"] + [
        f"{a}.5,m{a % 7},{str(a > 600).lower()}" for a in range(0, 900)
    ] * 2
    (root / "pay.csv").write_text("\n".join(rows) + "\n")
    cli(root, "ingest", "pay", str(root / "pay.csv"), "-q")
    assert "version 1" in cli(root, "train", "fraud", "-q")
    fs = Freshet(root)
    fs.start(wait_ready=True)
    try:
        r = requests.post(f"{fs.url}/api/2.0/mlflow/registered-models/alias",
                          json={"name": "fraud", "alias": "champion", "version": "1"}, timeout=10)
        assert r.status_code == 200, r.text
        fs.wait(lambda: requests.get(f"{fs.url}/v2/models/fraud/ready", timeout=5).status_code == 200,
                "the champion served", 30)
        yield fs
    finally:
        fs.stop()


def client(fs: Freshet) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(url=fs.url.removeprefix("http://"))


AMOUNTS = np.array([[50.5], [880.5], [120.5], [700.5]], dtype=np.float64)
MERCHANTS = np.array([[b"m1"], [b"m3"], [b"m0"], [b"m6"]], dtype=np.object_)
EXPECTED = [False, True, False, True]


def tensors(binary: bool) -> list[httpclient.InferInput]:
    amount = httpclient.InferInput("amount", list(AMOUNTS.shape), "FP64")
    amount.set_data_from_numpy(AMOUNTS, binary_data=binary)
    merchant = httpclient.InferInput("merchant", list(MERCHANTS.shape), "BYTES")
    merchant.set_data_from_numpy(MERCHANTS, binary_data=binary)
    return [amount, merchant]


def test_binary_tensors_in_and_out_by_default(served):
    """The client's defaults: binary inputs, and every output asked for as binary."""
    res = client(served).infer("fraud", tensors(binary=True))
    assert all("binary_data_size" in o["parameters"] for o in res.get_response()["outputs"])
    assert res.as_numpy("predictions").tolist() == EXPECTED
    proba = res.as_numpy("probabilities")
    assert proba.shape == (4, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    # The binary answer carries the same numbers as the JSON one for the same rows.
    plain = requests.post(f"{served.url}/v2/models/fraud/infer", json={"inputs": [
        {"name": "amount", "shape": [4, 1], "datatype": "FP64", "data": AMOUNTS.ravel().tolist()},
        {"name": "merchant", "shape": [4, 1], "datatype": "BYTES", "data": ["m1", "m3", "m0", "m6"]},
    ]}, timeout=10)
    assert plain.status_code == 200, plain.text
    assert "inference-header-content-length" not in plain.headers
    by_name = {o["name"]: o for o in plain.json()["outputs"]}
    np.testing.assert_array_equal(proba.ravel(), np.array(by_name["probabilities"]["data"]))


def test_json_tensors_and_outputs_chosen_one_by_one(served):
    """JSON inputs; predictions asked for as JSON, probabilities as binary."""
    outputs = [
        httpclient.InferRequestedOutput("predictions", binary_data=False),
        httpclient.InferRequestedOutput("probabilities", binary_data=True),
    ]
    res = client(served).infer("fraud", tensors(binary=False), outputs=outputs)
    assert res.get_output("predictions")["data"] == EXPECTED
    assert "binary_data_size" in res.get_output("probabilities")["parameters"]
    assert res.as_numpy("probabilities").shape == (4, 2)


def test_server_and_model_metadata_and_readiness(served):
    """What the client asks before inferring: the server's health and metadata (with
    the binary extension), the model's and a version's readiness, the model's tensors."""
    c = client(served)
    assert c.is_server_live() and c.is_server_ready()
    meta = c.get_server_metadata()
    assert meta["name"] == "freshet" and "binary_tensor_data" in meta["extensions"]
    assert c.is_model_ready("fraud") and c.is_model_ready("fraud", "1")
    assert not c.is_model_ready("fraud", "7") and not c.is_model_ready("nope")
    model = c.get_model_metadata("fraud")
    assert {i["name"]: i["datatype"] for i in model["inputs"]} == {"amount": "FP64", "merchant": "BYTES"}
    assert [o["name"] for o in model["outputs"]] == ["predictions", "probabilities"]


def test_the_client_reads_a_4xx_error(served):
    """A column the model does not read, and a model not served: the client raises
    with the status and the spec's error message, which names the problem."""
    wrong = httpclient.InferInput("amout", list(AMOUNTS.shape), "FP64")
    wrong.set_data_from_numpy(AMOUNTS)
    with pytest.raises(InferenceServerException) as e:
        client(served).infer("fraud", [wrong, tensors(binary=True)[1]])
    assert e.value.status() == "400", e.value
    assert "amout" in e.value.message(), e.value.message()
    with pytest.raises(InferenceServerException) as e:
        client(served).infer("nope", tensors(binary=True))
    assert e.value.status() == "404", e.value
