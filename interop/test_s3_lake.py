"""The lake and the artifacts in S3 (an S3-compatible store: moto, see s3_server.py).

Three `freshet up` nodes with the same configuration (one Postgres registry) ingest
into one Delta table at once (on SeaweedFS, whose conditional writes are atomic), while
one of them at a time is SIGKILLed and restarted:

* every record lands exactly once, whichever node took it and however the batches were
  retried across nodes (idempotency keys hold across nodes);
* the table is a plain Delta table in the bucket, read back by the `deltalake` and
  `polars` Python packages; `freshet tables` lists it from the bucket;
* a lake whose bucket does not exist is refused at start-up with the reason;
* the loop trains from events in S3, publishes its version's files to S3
  (`registry.artifacts: s3://…`), serves them and captures its answers there;
* MLflow client artifacts go to the bucket through the artifact proxy and come back.

Runs the real binary (FRESHET_BIN); the store is started and stopped here.
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from deltalake import DeltaTable

from s3_server import REGION, S3Server, SeaweedServer

BUCKET = "freshet-lake"
BATCHES = 240
PER_BATCH = 40


def config(endpoint: str, bucket: str = BUCKET, registry: str = "path: data/registry.db") -> str:
    return f"""\
lake:
  path: s3://{bucket}/prod
  compaction: {{ enabled: false }}
s3: {{ endpoint: "{endpoint}", region: {REGION}, allow_http: true }}
registry: {{ {registry} }}
streams:
  pay:
    source: {{ type: http }}
    schema:
      fields:
        - {{ name: id, type: int, required: true }}
        - {{ name: amount, type: float }}
    commit: {{ max_latency_ms: 20 }}
"""


def binary() -> str:
    return os.environ.get("FRESHET_BIN") or pytest.fail("set FRESHET_BIN to the freshet binary")


class Node:
    def __init__(self, root: Path, env: dict[str, str]):
        self.root, self.env = root, {**os.environ, **env}
        self.log = root / "server.log"
        self.url = ""
        self.start()

    def start(self) -> None:
        addr = self.root / "addr"
        addr.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [binary(), "--config", str(self.root / "freshet.yaml"), "up", "--listen", "127.0.0.1:0",
             "--addr-file", str(addr), "--no-sources"],
            cwd=self.root, env=self.env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
        )

    def ready(self, timeout: float = 60) -> None:
        addr = self.root / "addr"
        deadline = time.time() + timeout
        while time.time() < deadline and self.proc.poll() is None:
            if addr.exists() and addr.read_text().strip():
                url = f"http://{addr.read_text().strip()}"
                try:
                    if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                        self.url = url
                        return
                except requests.RequestException:
                    pass
            time.sleep(0.1)
        pytest.fail(f"node {self.root.name} is not ready; log:\n{self.log.read_text()[-4000:]}")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def s3(tmp_path):
    server = S3Server(tmp_path / "moto.log")
    try:
        server.client().create_bucket(Bucket=BUCKET)
        yield server
    finally:
        server.stop()


@pytest.fixture
def atomic_s3(tmp_path):
    """A store whose conditional writes are atomic, for racing writers."""
    server = SeaweedServer(tmp_path)
    try:
        server.client().create_bucket(Bucket=BUCKET)
        yield server
    finally:
        server.stop()


def nodes_dir(tmp_path: Path, s3: S3Server, name: str, bucket: str = BUCKET,
              registry: str = "path: data/registry.db") -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "freshet.yaml").write_text(config(s3.endpoint, bucket, registry))
    return d


def batch(b: int) -> list[dict]:
    return [{"id": b * PER_BATCH + i, "amount": float(i)} for i in range(PER_BATCH)]


def test_three_nodes_share_one_s3_table_exactly_once_through_kills(tmp_path, atomic_s3):
    s3 = atomic_s3
    from pg_server import Postgres

    pg = Postgres()
    # All nodes start at once on one Postgres registry: they find no table and race to
    # create it, and no registry schema either.
    registry = f'url: "{pg.url}"'
    nodes = [Node(nodes_dir(tmp_path, s3, f"node{i}", registry=registry), s3.env()) for i in range(3)]
    try:
        for n in nodes:
            n.ready()
        stats = {"retries": 0, "kills": 0}
        answered_by: list[set[int]] = [set(), set(), set()]
        lock = threading.Lock()
        done = threading.Event()

        def send(b: int, first: int) -> dict:
            """Post batch b with its key, starting at node `first`; a failure (a 5xx, a
            409, a node that is down) is retried on the next node, as a client behind a
            load balancer would."""
            for attempt in range(60):
                n = (first + attempt) % 3
                try:
                    r = requests.post(f"{nodes[n].url}/v1/streams/pay/events", json=batch(b),
                                      headers={"Idempotency-Key": f"batch-{b}"}, timeout=30)
                except requests.RequestException:
                    r = None
                if r is not None and r.status_code == 200:
                    with lock:
                        answered_by[n].add(b)
                    return r.json()
                assert r is None or r.status_code in (409, 500, 503), (r.status_code, r.text)
                with lock:
                    stats["retries"] += 1
                time.sleep(0.05 * min(attempt + 1, 10))
            pytest.fail(f"batch {b} was never accepted")

        def worker(k: int) -> None:
            for b in range(k, BATCHES, 6):
                out = send(b, b % 3)
                assert out["accepted"] == PER_BATCH, out
                time.sleep(0.1)

        def killer() -> None:
            # SIGKILL one node at a time while the clients send, then bring it back.
            rng = random.Random(7)
            while not done.wait(rng.uniform(0.5, 1.5)):
                node = nodes[rng.randrange(3)]
                node.kill()
                stats["kills"] += 1
                time.sleep(0.3)
                node.start()
                node.ready()

        chaos = threading.Thread(target=killer)
        chaos.start()
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done.set()
        chaos.join()
        assert stats["kills"] >= 4, stats
        assert sum(1 for a in answered_by if a) >= 2, "several nodes must have committed batches"

        # The same batches again, each to a node that did not answer it: that node may
        # never have seen the key, and its view of the table may be old. With every node
        # up, it answers the replay at once: not an error, not a second copy.
        for b in range(0, BATCHES, 3):
            other = next(i for i in range(3) if b not in answered_by[i])
            r = requests.post(f"{nodes[other].url}/v1/streams/pay/events", json=batch(b),
                              headers={"Idempotency-Key": f"batch-{b}"}, timeout=30)
            assert r.status_code == 200, (b, r.status_code, r.text)
            out = r.json()
            assert out["replayed"] is True and out["accepted"] == PER_BATCH, (b, out)

        dt = DeltaTable(f"s3://{BUCKET}/prod/events/pay", storage_options=s3.storage_options())
        ids = dt.to_pyarrow_table(columns=["id"]).column("id").to_pylist()
        assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} records landed twice"
        assert sorted(ids) == list(range(BATCHES * PER_BATCH))
        import polars as pl
        assert pl.read_delta(f"s3://{BUCKET}/prod/events/pay", storage_options=s3.storage_options()).height \
            == BATCHES * PER_BATCH
        versions = [h["version"] for h in dt.history()]
        assert sorted(versions) == list(range(max(versions) + 1)), "the log has a gap"
        print(f"{len(versions)} commits from 3 nodes, {stats['kills']} SIGKILLs, "
              f"{stats['retries']} client retries")

        listing = subprocess.run(
            [binary(), "--config", str(nodes[0].root / "freshet.yaml"), "tables"],
            cwd=nodes[0].root, env=nodes[0].env, capture_output=True, text=True, timeout=120,
        )
        assert listing.returncode == 0, listing.stdout + listing.stderr
        line = next(l for l in listing.stdout.splitlines() if l.startswith("events/pay"))
        assert line.split()[2] == str(BATCHES * PER_BATCH), listing.stdout
    finally:
        for n in nodes:
            n.stop()
        pg.close()


def test_a_missing_bucket_is_refused_at_start(tmp_path, s3):
    node = Node(nodes_dir(tmp_path, s3, "node", bucket="no-such-bucket"), s3.env())
    try:
        assert node.proc.wait(60) != 0
    finally:
        node.stop()
    log = node.log.read_text()
    assert "cannot open the lake at s3://no-such-bucket/prod" in log, log
    assert s3.env()["AWS_SECRET_ACCESS_KEY"] not in log


LOOP_CONFIG = """\
lake:
  path: s3://{bucket}/loop
  compaction: {{ enabled: false }}
s3: {{ endpoint: "{endpoint}", region: {region}, allow_http: true }}
registry: {{ path: data/registry.db, artifacts: "s3://{bucket}/artifacts" }}
streams:
  card:
    source: {{ type: http }}
    schema:
      fields:
        - {{ name: amount, type: float }}
        - {{ name: is_fraud, type: bool }}
    commit: {{ max_latency_ms: 20 }}
models:
  fraud:
    stream: card
    label: is_fraud
    learner: {{ type: logistic_regression }}
    triggers: {{ initial_rows: 400, concept_drift: none }}
"""


def test_the_loop_runs_on_an_s3_lake(tmp_path, s3):
    """Training reads the events from S3, and serving captures its answers there."""
    d = tmp_path / "loop"
    d.mkdir()
    (d / "freshet.yaml").write_text(LOOP_CONFIG.format(bucket=BUCKET, endpoint=s3.endpoint, region=REGION))
    node = Node(d, s3.env())
    try:
        node.ready()
        rows = [{"amount": float(i % 50), "is_fraud": i % 50 > 30} for i in range(600)]
        r = requests.post(f"{node.url}/v1/streams/card/events", json=rows, timeout=30)
        assert r.status_code == 200 and r.json()["accepted"] == 600, r.text
        alias = f"{node.url}/api/2.0/mlflow/registered-models/alias"
        deadline = time.time() + 120
        while requests.get(alias, params={"name": "fraud", "alias": "champion"}, timeout=5).status_code != 200:
            assert time.time() < deadline, node.log.read_text()[-4000:]
            time.sleep(0.5)
        while True:  # serving follows the alias within a second or two
            r = requests.post(f"{node.url}/serving-endpoints/fraud/invocations",
                              json={"dataframe_records": [{"amount": 45.0}, {"amount": 2.0}]}, timeout=30)
            if r.status_code != 404 or time.time() > deadline:
                break
            time.sleep(0.5)
        assert r.status_code == 200, r.text
        assert [p["prediction"] if isinstance(p, dict) else p for p in r.json()["predictions"]] == [True, False], r.text
        # The version the loop trained was published to the bucket, and served from it.
        keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=BUCKET, Prefix="artifacts/")["Contents"]]
        assert any(k.endswith("/MLmodel") for k in keys), keys
        captured = f"s3://{BUCKET}/loop/inference/fraud"
        deadline = time.time() + 60
        while True:
            try:
                n = DeltaTable(captured, storage_options=s3.storage_options()).to_pyarrow_table().num_rows
            except Exception:  # noqa: BLE001 - not created or not committed yet
                n = 0
            if n >= 2:
                break
            assert time.time() < deadline, node.log.read_text()[-4000:]
            time.sleep(0.5)
    finally:
        node.stop()


def test_mlflow_artifacts_live_in_s3(tmp_path, s3):
    """Run files logged with the MLflow client go to the bucket through Freshet's artifact
    proxy (large ones as multipart uploads) and come back byte for byte."""
    import mlflow
    from mlflow import MlflowClient

    d = tmp_path / "arts"
    d.mkdir()
    (d / "freshet.yaml").write_text(LOOP_CONFIG.format(bucket=BUCKET, endpoint=s3.endpoint, region=REGION))
    node = Node(d, s3.env())
    try:
        node.ready()
        big = os.urandom(9 * 1024 * 1024 + 123)  # past one 8 MiB part
        (d / "weights.bin").write_bytes(big)
        (d / "notes.txt").write_text("hello")
        client = MlflowClient(tracking_uri=node.url)
        exp = client.create_experiment("s3-artifacts")
        run = client.create_run(exp)
        client.log_artifact(run.info.run_id, str(d / "weights.bin"), "model")
        client.log_artifact(run.info.run_id, str(d / "notes.txt"))
        listed = {(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run.info.run_id)}
        assert listed == {("model", True, None), ("notes.txt", False, 5)}, listed
        inner = client.list_artifacts(run.info.run_id, "model")
        assert [(f.path, f.file_size) for f in inner] == [("model/weights.bin", len(big))]
        out = Path(mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="model/weights.bin", dst_path=str(d / "back"),
            tracking_uri=node.url))
        assert out.read_bytes() == big
        # The objects are in the bucket, under the configured prefix.
        keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=BUCKET, Prefix="artifacts/")["Contents"]]
        assert any(k.endswith("/model/weights.bin") for k in keys), keys
        assert any(k.endswith("/notes.txt") for k in keys), keys
        # Deleting a directory through the proxy removes everything under it.
        prefix = run.info.artifact_uri.removeprefix("mlflow-artifacts:/")
        r = requests.delete(f"{node.url}/api/2.0/mlflow-artifacts/artifacts/{prefix}/model", timeout=30)
        assert r.status_code == 200, r.text
        assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["notes.txt"]
        r = requests.get(f"{node.url}/api/2.0/mlflow-artifacts/artifacts/{prefix}/model/weights.bin", timeout=30)
        assert r.status_code == 404, r.text
    finally:
        node.stop()
