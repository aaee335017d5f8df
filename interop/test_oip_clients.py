"""Triton's and KServe's own clients against a Freshet model over the Open Inference
Protocol (issue 15: "tritonclient and the KServe client infer with JSON and binary
tensors, and read a 4xx error, against a Freshet model").

`tritonclient.http` sends input tensors with the binary data extension by default
(`Inference-Header-Content-Length`, raw little-endian elements, BYTES length-prefixed)
and, when no outputs are named, asks for every output as binary data; named outputs
choose per output. KServe's `InferenceRESTClient` (protocol v2) sends an input as binary
data when it was set with `set_data_from_numpy(..., binary_data=True)` (its default)
and asks for binary outputs only through `binary_data_output` / an output's
`binary_data`. The model is a logistic regression trained with `freshet train` on a
stream where the label is `amount > 600`, so the expected answers are known.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import kserve
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


# KServe's own Python client (kserve.InferenceRESTClient, protocol v2), as a second
# independent client. It is async; each test runs one coroutine with asyncio.run.


class RecordingTransport(httpx.AsyncHTTPTransport):
    """The client's ordinary transport, keeping each request as it goes on the wire."""

    def __init__(self):
        super().__init__()
        self.sent: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return await super().handle_async_request(request)


def kserve_call(fn, transport: RecordingTransport | None = None):
    """Run `await fn(client)` with a fresh KServe REST client speaking protocol v2."""
    async def main():
        config = kserve.RESTConfig(protocol="v2", transport=transport or RecordingTransport(),
                                   timeout=30)
        async with kserve.InferenceRESTClient(config) as c:
            return await fn(c)
    return asyncio.run(main())


def ks_tensors(binary: bool, amounts: np.ndarray = AMOUNTS) -> list[kserve.InferInput]:
    dtype = {np.dtype(np.float64): "FP64", np.dtype(np.float16): "FP16"}[amounts.dtype]
    amount = kserve.InferInput("amount", list(amounts.shape), dtype)
    amount.set_data_from_numpy(amounts, binary_data=binary)
    merchant = kserve.InferInput("merchant", list(MERCHANTS.shape), "BYTES")
    merchant.set_data_from_numpy(MERCHANTS, binary_data=binary)
    return [amount, merchant]


def ks_infer(fs: Freshet, request: kserve.InferRequest, transport: RecordingTransport | None = None,
             model: str = "fraud") -> tuple[kserve.InferResponse, dict]:
    """Infer through the KServe client; the answer and the response's headers."""
    headers: dict = {}
    res = kserve_call(lambda c: c.infer(fs.url, request, model_name=model, response_headers=headers),
                      transport)
    return res, {k.lower(): v for k, v in headers.items()}


def outputs(res: kserve.InferResponse) -> dict[str, np.ndarray]:
    return {o.name: o.as_numpy() for o in res.outputs}


def triton_probabilities(fs: Freshet) -> np.ndarray:
    return client(fs).infer("fraud", tensors(binary=True)).as_numpy("probabilities")


def test_kserve_client_infers_with_json_tensors(served):
    """KServe's client with every tensor in the JSON: the request carries no binary part,
    the answer is plain JSON, and the numbers are Triton's client's for the same rows."""
    sent = RecordingTransport()
    request = kserve.InferRequest("fraud", ks_tensors(binary=False), request_id="ks-json")
    res, headers = ks_infer(served, request, sent)
    (wire,) = sent.sent
    assert "inference-header-content-length" not in wire.headers
    assert wire.headers["content-type"] == "application/json"
    body = json.loads(wire.content)
    assert [i["data"] for i in body["inputs"]] == [AMOUNTS.ravel().tolist(), ["m1", "m3", "m0", "m6"]]
    assert "inference-header-content-length" not in headers
    # Freshet's answer `id` is its own request id; the caller's id comes back as a parameter.
    assert res.model_name == "fraud" and res.parameters["client_request_id"] == "ks-json"
    got = outputs(res)
    assert got["predictions"].ravel().tolist() == EXPECTED
    assert got["probabilities"].shape == (4, 2)
    np.testing.assert_array_equal(got["probabilities"], triton_probabilities(served))


def test_kserve_client_infers_with_binary_tensors_in_and_out(served):
    """KServe's client with binary inputs (its `set_data_from_numpy` default) and every
    output asked for as binary: the request on the wire has the extension's header and
    the raw elements after the JSON, and the client reads the binary answer."""
    sent = RecordingTransport()
    request = kserve.InferRequest("fraud", ks_tensors(binary=True),
                                  parameters={"binary_data_output": True})
    res, headers = ks_infer(served, request, sent)
    (wire,) = sent.sent
    n = int(wire.headers["inference-header-content-length"])
    assert wire.headers["content-type"] == "application/octet-stream"
    head = json.loads(wire.content[:n])
    assert all("data" not in i for i in head["inputs"])
    sizes = [i["parameters"]["binary_data_size"] for i in head["inputs"]]
    assert sizes == [AMOUNTS.nbytes, sum(4 + len(m) for m in MERCHANTS.ravel())]
    assert len(wire.content) == n + sum(sizes)
    assert wire.content[n:n + sizes[0]] == AMOUNTS.tobytes()
    # The answer came binary: the header says where its JSON ends.
    assert headers["content-type"] == "application/octet-stream"
    assert int(headers["inference-header-content-length"]) > 0
    got = outputs(res)
    assert got["predictions"].ravel().tolist() == EXPECTED
    np.testing.assert_array_equal(got["probabilities"], triton_probabilities(served))


def test_kserve_client_reads_a_4xx_error(served):
    """A column the model does not read, and a model not served: the client raises
    httpx.HTTPStatusError whose message carries Freshet's spec error (`{"error": ...}`)."""
    wrong = kserve.InferInput("amout", list(AMOUNTS.shape), "FP64")
    wrong.set_data_from_numpy(AMOUNTS)  # binary by default
    with pytest.raises(httpx.HTTPStatusError) as e:
        ks_infer(served, kserve.InferRequest("fraud", [wrong, ks_tensors(binary=True)[1]]))
    assert e.value.response.status_code == 400, e.value
    # What Freshet says to the same request in plain JSON is what the client reports.
    plain = requests.post(f"{served.url}/v2/models/fraud/infer", json={"inputs": [
        {"name": "amout", "shape": [4, 1], "datatype": "FP64", "data": AMOUNTS.ravel().tolist()},
        {"name": "merchant", "shape": [4, 1], "datatype": "BYTES", "data": ["m1", "m3", "m0", "m6"]},
    ]}, timeout=10)
    assert plain.status_code == 400, plain.text
    message = plain.json()["error"]
    assert "amout" in message, message
    assert str(e.value).startswith(f"{message}, '400 Bad Request'"), str(e.value)
    with pytest.raises(httpx.HTTPStatusError) as e:
        ks_infer(served, kserve.InferRequest("nope", ks_tensors(binary=False)), model="nope")
    assert e.value.response.status_code == 404, e.value
    assert "nope" in str(e.value).split(", '404")[0], str(e.value)


def test_kserve_client_reads_model_readiness(served):
    """The KServe REST client's readiness call (it has no metadata call): the served model
    is ready, one not served is not."""
    assert kserve_call(lambda c: c.is_model_ready(served.url, "fraud")) is True
    assert kserve_call(lambda c: c.is_model_ready(served.url, "nope")) is False


def test_kserve_client_sends_fp16_binary_tensors(served):
    """FP16 input as binary data (KServe's client refuses FP16 in JSON): Freshet widens
    the halves exactly, so the answer is the FP64 one. These amounts are exact in FP16."""
    halves = AMOUNTS.astype(np.float16)
    assert halves.astype(np.float64).tolist() == AMOUNTS.tolist()
    sent = RecordingTransport()
    res, _ = ks_infer(served, kserve.InferRequest("fraud", ks_tensors(binary=True, amounts=halves)), sent)
    head = json.loads(sent.sent[0].content[:int(sent.sent[0].headers["inference-header-content-length"])])
    assert head["inputs"][0]["datatype"] == "FP16"
    assert head["inputs"][0]["parameters"]["binary_data_size"] == 2 * AMOUNTS.size
    got = outputs(res)
    assert got["predictions"].ravel().tolist() == EXPECTED
    np.testing.assert_array_equal(got["probabilities"], triton_probabilities(served))
