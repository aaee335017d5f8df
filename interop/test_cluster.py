"""Several `freshet up` nodes on one Postgres registry (`registry.url`) and one lake.

Every node serves and ingests; per model exactly one node at a time runs the loop and
the rollout controller, chosen by a lease in Postgres with a fencing token:

* the leader of a model is SIGKILLed as soon as the rows that trigger a retraining
  are in, then the next one in the middle of the rollout: each time another node takes over within 10 s, and in the end no
  version was registered twice and every rollout step was decided once (the union of
  every node's audit trail, and the rollout's own record, say so);
* a leader paused with SIGSTOP loses its lease; the node that takes over does the
  model's work; resumed, the paused node steps down without acting;
* `GET /v1/cluster` shows the nodes, who leads what and the tokens.

Runs the real binary (FRESHET_BIN) and a throwaway PostgreSQL (pg_server.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from pg_server import PASSWORD, Postgres

LEASE = "model:fraud"


def config(pg: Postgres, shared: Path, ttl_ms: int) -> str:
    return f"""\
lake: {{ path: "{shared / 'lake'}", compaction: {{ enabled: false }} }}
registry: {{ url: "{pg.url}", artifacts: "{shared / 'artifacts'}" }}
cluster: {{ lease_ttl_ms: {ttl_ms} }}
streams:
  pay:
    source: {{ type: http }}
    schema:
      fields:
        - {{ name: amount, type: float }}
        - {{ name: is_fraud, type: bool }}
    commit: {{ max_latency_ms: 20 }}
models:
  fraud:
    stream: pay
    label: is_fraud
    learner: {{ type: logistic_regression }}
    triggers: {{ initial_rows: 200, rows: 300, concept_drift: none }}
    job: {{ type: builtin, window_rows: 300 }}
    rollout:
      shadow: {{ min_requests: 30, min_secs: 0 }}
      canary: {{ steps: [50], min_requests: 30, min_secs: 0 }}
      checks: {{ max_prediction_drift: 1.0 }}
      bake: {{ enabled: false }}
"""


def binary() -> str:
    return os.environ.get("FRESHET_BIN") or pytest.fail("set FRESHET_BIN to the freshet binary")


class Node:
    def __init__(self, root: Path, text: str):
        root.mkdir()
        (root / "freshet.yaml").write_text(text)
        self.root, self.log, self.url = root, root / "server.log", ""
        self.start()

    def start(self) -> None:
        addr = self.root / "addr"
        addr.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [binary(), "--config", str(self.root / "freshet.yaml"), "up", "--listen", "127.0.0.1:0",
             "--addr-file", str(addr), "--no-sources"],
            cwd=self.root, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
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

    @property
    def address(self) -> str:
        return self.url.removeprefix("http://")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def cluster_view(node: Node) -> dict:
    r = requests.get(f"{node.url}/v1/cluster", timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def leader(nodes: list[Node], not_address: str | None = None, timeout: float = 15) -> tuple[Node, int, float]:
    """The live node holding the model's lease (other than `not_address`, which is not
    asked either: it may be paused), its token, and how long it took to appear."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        for asker in (n for n in nodes if n.alive() and n.address != not_address):
            try:
                view = cluster_view(asker)
            except requests.RequestException:
                continue
            by_id = {n["node_id"]: n["address"] for n in view["nodes"]}
            for lease in view["leases"]:
                if lease["name"] == LEASE and lease["held"]:
                    address = by_id.get(lease["holder"])
                    for n in nodes:
                        if n.alive() and n.address == address and address != not_address:
                            return n, lease["token"], time.time() - t0
            break
        time.sleep(0.2)
    pytest.fail(f"no node took {LEASE} over within {timeout} s")


def rows(flipped: bool, n: int) -> list[dict]:
    return [{"amount": float(i % 50), "is_fraud": (i % 50 > 25) != flipped} for i in range(n)]


def ingest(node: Node, body: list[dict]) -> None:
    r = requests.post(f"{node.url}/v1/streams/pay/events", json=body, timeout=30)
    assert r.status_code == 200 and r.json()["accepted"] == len(body), r.text


def rollout(node: Node) -> dict:
    r = requests.get(f"{node.url}/v1/models/fraud/rollout", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def versions(node: Node) -> list[int]:
    r = requests.get(f"{node.url}/api/2.0/mlflow/model-versions/search",
                     params={"filter": "name = 'fraud'"}, timeout=10)
    assert r.status_code == 200, r.text
    return sorted(int(v["version"]) for v in r.json().get("model_versions", []))


def wait(what: str, check, timeout: float, logs: list[Node]):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            got = check()
        except (requests.RequestException, AssertionError, KeyError, TypeError):
            got = None
        if got:
            return got
        time.sleep(0.3)
    tails = "\n".join(f"--- {n.root.name}\n{n.log.read_text()[-3000:]}" for n in logs)
    pytest.fail(f"{what}: not within {timeout} s\n{tails}")


def audit(node: Node) -> list[dict]:
    import json

    r = requests.get(f"{node.url}/v1/audit", timeout=30)
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


@pytest.fixture
def pg():
    server = Postgres()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def started():
    """Nodes to stop at the end of the test, whatever happened."""
    nodes: list[Node] = []
    yield nodes
    for n in nodes:
        n.stop()


def cluster_of(count: int, tmp_path: Path, pg: Postgres, started: list[Node], ttl_ms: int) -> list[Node]:
    shared = tmp_path / "shared"
    shared.mkdir()
    text = config(pg, shared, ttl_ms)
    for i in range(count):
        started.append(Node(tmp_path / f"node{i}", text))
    return list(started)


def with_champion(nodes: list[Node]) -> tuple[Node, Node, int]:
    """The leader, another node and the leader's token, once the leader has trained
    v1 from rows ingested through the other node."""
    lead, token, _ = leader(nodes)
    other = next(n for n in nodes if n is not lead)
    ingest(other, rows(False, 250))
    wait("v1 champion", lambda: rollout(other)["champion"] == 1, 120, nodes)
    return lead, other, token


def test_a_killed_leader_is_replaced_within_10_s_and_nothing_is_done_twice(tmp_path, pg, started):
    nodes = cluster_of(3, tmp_path, pg, started, ttl_ms=5000)  # the default lease time
    leader(nodes)
    assert sum("loop started" in n.log.read_text() for n in nodes) == 1, "one loop runs"
    view = cluster_view(nodes[0])
    assert view["mode"] == "cluster" and len(view["nodes"]) == 3
    assert all(n["healthy"] for n in view["nodes"])

    # v1 on the first concept, ingested through another node.
    first, other, token = with_champion(nodes)

    # The concept flips; the leader is killed as soon as the rows that trigger v2 are
    # acknowledged (its loop ticks every second): before or while it trains v2.
    ingest(other, rows(True, 350))
    time.sleep(0.3)
    first.kill()
    second, token2, took = leader(nodes, not_address=first.address)
    assert took < 10, f"failover took {took:.1f} s"
    assert token2 > token, "a new leader gets a greater fencing token"

    # v2 is trained (once) and its rollout begins; the second leader is killed in it.
    wait("v2 in shadow", lambda: (rollout(second)["state"] or {}).get("candidate_version") == 2
         and rollout(second)["state"]["phase"]["name"] == "shadow", 120, nodes)
    second.kill()
    third, token3, took = leader(nodes, not_address=second.address)
    assert took < 10, f"failover took {took:.1f} s"
    assert token3 > token2

    # The leader judges the requests it served: send them to it.
    def serve_until_promoted():
        for _ in range(10):
            requests.post(f"{third.url}/serving-endpoints/fraud/invocations",
                          json={"dataframe_records": [{"amount": 10.0}, {"amount": 40.0}]}, timeout=10)
        st = rollout(third)
        return st["champion"] == 2 and st["state"]["phase"]["name"] == "promoted"
    wait("v2 promoted", serve_until_promoted, 120, nodes)

    # Nothing twice: two versions, and each step decided once across every node.
    assert versions(third) == [1, 2]
    first.start()
    second.start()
    events = [e for n in nodes for e in audit(n)]
    trained = [e for e in events if e.get("action") == "loop.trained"]
    assert sorted(e["detail"]["version"] for e in trained) == ["1", "2"], trained
    steps = [(e["action"], e["detail"].get("reason", "")) for e in events
             if e["action"].startswith("rollout.") and e["resource"] == "model:fraud"]
    assert len(steps) == len(set(steps)), f"a rollout step was decided twice: {steps}"
    assert ("rollout.promote", "") in steps, steps
    # The rollout's own record: each phase entered once.
    entered = [d["to"] for d in rollout(third)["state"]["decisions"]]
    assert len(entered) == len(set(entered)), entered
    assert entered[-1] == "promoted", entered
    for n in nodes:
        assert PASSWORD not in n.log.read_text()


def test_a_paused_leader_loses_its_lease_and_steps_down_without_acting(tmp_path, pg, started):
    nodes = cluster_of(2, tmp_path, pg, started, ttl_ms=2000)
    paused, other, token = with_champion(nodes)

    paused.proc.send_signal(signal.SIGSTOP)
    taker, token2, took = leader(nodes, not_address=paused.address)
    assert taker is other and token2 > token and took < 10
    # The new leader does the model's work while the old one is paused.
    ingest(other, rows(True, 350))
    wait("v2 in rollout", lambda: (rollout(other)["state"] or {}).get("candidate_version") == 2, 120, nodes)

    paused.proc.send_signal(signal.SIGCONT)
    wait("the resumed node steps down",
         lambda: "loop stopped: another node leads the model" in paused.log.read_text()
         or "stepped down" in paused.log.read_text(), 15, nodes)
    time.sleep(3)
    view = cluster_view(paused)
    held = [lease for lease in view["leases"] if lease["name"] == LEASE]
    by_id = {n["node_id"]: n["address"] for n in view["nodes"]}
    assert by_id[held[0]["holder"]] == other.address and held[0]["token"] == token2
    assert versions(other) == [1, 2], "the paused node registered nothing"
    assert paused.log.read_text().count("loop started") == 1, "it did not lead again"


def test_a_clean_stop_hands_over_at_once_and_a_database_outage_pauses_only_the_loops(tmp_path, pg, started):
    nodes = cluster_of(2, tmp_path, pg, started, ttl_ms=3000)
    first, other, token = with_champion(nodes)

    # SIGTERM: the leader releases its lease on the way out; no need to wait 3 s.
    first.proc.terminate()
    first.proc.wait(60)
    taker, token2, took = leader(nodes, not_address=first.address)
    assert taker is other and token2 > token
    assert took < 2.5, f"a clean stop should hand over before the lease runs out, took {took:.1f} s"
    assert "lease released" in first.log.read_text()
    first.start()

    # The registry database goes away: serving and ingest go on, the loops pause.
    pg.stop()
    for n in nodes:
        r = requests.post(f"{n.url}/serving-endpoints/fraud/invocations",
                          json={"dataframe_records": [{"amount": 40.0}]}, timeout=10)
        assert r.status_code == 200, r.text
    ingest(first, rows(True, 50))
    r = requests.get(f"{first.url}/api/2.0/mlflow/registered-models/get", params={"name": "fraud"}, timeout=30)
    assert r.status_code in (500, 503), r.text
    assert "internal error" in r.text or "unavailable" in r.text.lower(), r.text
    wait("the leader steps down", lambda: "stepped down" in other.log.read_text(), 15, nodes)

    # Back: a node leads again at a greater token and the loop resumes.
    pg.start()
    again, token3, _ = leader(nodes, timeout=20)
    assert token3 > token2
    ingest(first, rows(True, 300))
    wait("v2 after the outage", lambda: 2 in versions(first), 120, nodes)
    for n in nodes:
        assert PASSWORD not in n.log.read_text()


def test_one_node_per_table_runs_its_maintenance(tmp_path, pg, started):
    """Compaction of a shared table runs only on the holder of its maintenance lease,
    and loses nothing."""
    shared = tmp_path / "shared"
    shared.mkdir()
    text = config(pg, shared, 3000).replace(
        "compaction: { enabled: false }", "compaction: { enabled: true, interval_secs: 1, min_files: 4 }")
    nodes = []
    for i in range(2):
        nodes.append(Node(tmp_path / f"node{i}", text))
        started.append(nodes[-1])
    # Small commits through both nodes: many small files in one partition.
    for b in range(16):
        ingest(nodes[b % 2], rows(False, 10))

    def compacted(n: Node) -> bool:
        return "compacted" in n.log.read_text()
    wait("a compaction", lambda: any(compacted(n) for n in nodes), 60, nodes)
    time.sleep(3)  # two more rounds: the other node must still not compact
    doers = [n for n in nodes if compacted(n)]
    assert len(doers) == 1, [n.root.name for n in doers]
    view = cluster_view(nodes[0])
    by_id = {n["node_id"]: n["address"] for n in view["nodes"]}
    held = [lease for lease in view["leases"]
            if lease["name"].startswith("maintenance:") and lease["name"].rstrip("/").endswith("/events/pay") and lease["held"]]
    assert len(held) == 1 and by_id[held[0]["holder"]] == doers[0].address, (held, doers[0].address)
    from deltalake import DeltaTable

    assert DeltaTable(str(shared / "lake/events/pay")).to_pyarrow_table().num_rows == 160


def test_a_node_on_sqlite_says_it_is_alone(tmp_path):
    d = tmp_path / "single"
    text = "lake: { path: data/lake }\nregistry: { path: data/registry.db }\nstreams: {}\n"
    node = Node(d, text)
    try:
        view = cluster_view(node)
        assert view["mode"] == "single"
    finally:
        node.stop()


def test_the_kubernetes_example_is_a_valid_configuration(tmp_path):
    """deploy/kubernetes/freshet.yaml's ConfigMap holds a configuration `freshet
    validate` accepts, with the database password from the environment."""
    import yaml

    docs = list(yaml.safe_load_all((Path(__file__).parent.parent / "deploy/kubernetes/freshet.yaml").read_text()))
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ConfigMap", "Deployment", "Service"]
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")
    (tmp_path / "freshet.yaml").write_text(config_map["data"]["freshet.yaml"])
    env = {**os.environ, "FRESHET_DB_PASSWORD": "from-a-secret", "FRESHET_PII_KEY": "k" * 32}
    out = subprocess.run([binary(), "--config", str(tmp_path / "freshet.yaml"), "validate"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] >= 2
