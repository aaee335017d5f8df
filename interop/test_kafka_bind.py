"""A model bound to Kafka topics: events in, answers out, against a real broker (tansu)
with confluent-kafka as the independent producer and consumer of answers.

Two versions are trained with `freshet train`; version 1 is champion when events start
to flow, and the champion alias moves to version 2 while they still do. Every
event must be answered (at least once) on the output topic with its key and the
headers naming its request; the answers switch version with the alias and no event is
lost across the swap; a poison event gets an error answer; every scored event is
captured in `inference/fraud`.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from deltalake import DeltaTable

from kafka_broker import Broker
from test_kafka import Freshet


# Manual partitions: tansu 0.6.0 answers a new group's join only after about half the
# session timeout, which would hold every event until after the swap.
def config(bootstrap: str) -> str:
    return f"""\
lake: {{ path: lake, compaction: {{ enabled: false }} }}
registry: {{ path: registry.db }}
streams:
  pay:
    source: {{ type: http }}
    schema:
      fields:
        - {{ name: amount, type: float }}
        - {{ name: merchant, type: string }}
        - {{ name: is_fraud, type: bool }}
    commit: {{ max_latency_ms: 100 }}
    dead_letter_sinks:
      - {{ type: kafka, brokers: "{bootstrap}", topic: pay-dead-letters }}
models:
  fraud:
    stream: pay
    label: is_fraud
    learner: {{ type: logistic_regression }}
    triggers: {{ initial_rows: 1000000000, concept_drift: none }}
    bind:
      - {{ type: kafka, brokers: "{bootstrap}", input: payments, output: payments-scored,
          group: fraud-scorer, start: earliest, partitions: [0, 1] }}
    sinks:
      - {{ type: kafka, brokers: "{bootstrap}", topic: fraud-predictions }}
"""


def cli(root: Path, *args: str) -> str:
    binary = os.environ.get("FRESHET_BIN") or pytest.fail("set FRESHET_BIN to the freshet binary")
    r = subprocess.run([binary, "--config", str(root / "freshet.yaml"), *args], cwd=root,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def produce(bootstrap: str, ids: range, sent: dict, pause_every: int = 0, pause: float = 0.0) -> None:
    """Produce events; `sent` maps each event's `topic/partition/offset` to its key."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})

    def done(err, msg):
        assert err is None, err
        sent[f"{msg.topic()}/{msg.partition()}/{msg.offset()}"] = msg.key().decode()

    for i in ids:
        value = b"{not json" if i == 1234 else json.dumps({"amount": float(i % 900), "merchant": f"m{i % 7}"}).encode()
        p.produce("payments", key=f"k{i % 20}", value=value, on_delivery=done)
        if pause_every and i % pause_every == pause_every - 1:
            p.poll(0)
            time.sleep(pause)
    assert p.flush(60) == 0


def test_topic_in_score_topic_out_with_a_champion_swap(tmp_path):
    root = tmp_path
    broker = Broker(root)
    fs = Freshet(root)
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for f in admin.create_topics([NewTopic(t, num_partitions=2, replication_factor=1)
                                      for t in ("payments", "payments-scored", "fraud-predictions",
                                                "pay-dead-letters")]).values():
            f.result(30)
        (root / "freshet.yaml").write_text(config(broker.bootstrap))
        rows = ["amount,merchant,is_fraud"] + [
            f"{a}.5,m{a % 7},{str(a > 600).lower()}" for a in range(0, 900, 1)
        ] * 2
        (root / "pay.csv").write_text("\n".join(rows) + "\n")
        cli(root, "ingest", "pay", str(root / "pay.csv"), "-q")
        assert "version 1" in cli(root, "train", "fraud", "-q")
        assert "version 2" in cli(root, "train", "fraud", "-q")

        fs.start(wait_ready=True)
        alias = f"{fs.url}/api/2.0/mlflow/registered-models/alias"
        r = requests.post(alias, json={"name": "fraud", "alias": "champion", "version": "1"}, timeout=10)
        assert r.status_code == 200, r.text
        fs.wait(lambda: fs.readyz()[0] == 200, "ready (the binding reaches the broker)", 60)

        answers: dict[str, list[tuple[str, dict, dict]]] = {}
        out = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "checker", "enable.auto.commit": False})
        out.assign([TopicPartition("payments-scored", p, 0) for p in range(2)])

        def read_until(n: int, timeout: float) -> None:
            deadline = time.time() + timeout
            while len(answers) < n and time.time() < deadline:
                for m in out.consume(1000, 0.5):
                    if m.error():
                        continue
                    h = {k: v.decode() for k, v in (m.headers() or [])}
                    answers.setdefault(h["freshet-client-request-id"], []).append(
                        (m.key().decode(), h, json.loads(m.value())))
            assert len(answers) >= n, f"{len(answers)} of {n} events answered; log:\n" + \
                (root / "server.log").read_text()[-3000:]

        sent: dict[str, str] = {}
        # Events flow for about 3 s; the champion moves while they do.
        producer = threading.Thread(target=produce, args=(broker.bootstrap, range(0, 3000), sent, 100, 0.1))
        producer.start()
        time.sleep(1.0)
        r = requests.post(alias, json={"name": "fraud", "alias": "champion", "version": "2"}, timeout=10)
        assert r.status_code == 200, r.text
        invocations = f"{fs.url}/serving-endpoints/fraud/invocations"
        fs.wait(lambda: requests.post(invocations, json={"dataframe_records": [{"amount": 1.0, "merchant": "m1"}]},
                                      timeout=10).json().get("version") == "2", "version 2 served", 30)
        assert producer.is_alive(), "the swap must land while events still flow"
        producer.join()
        read_until(3000, 60)
        out.close()

        # Every captured prediction is also on the sink topic, keyed <request_id>/<row>.
        sunk: dict[str, tuple[dict, dict]] = {}
        sink = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "sink-checker",
                         "enable.auto.commit": False})
        sink.assign([TopicPartition("fraud-predictions", p, 0) for p in range(2)])

        def captured_keys() -> set[str]:
            t = DeltaTable(str(root / "lake" / "inference" / "fraud")).to_pyarrow_table(columns=["request_id", "row"])
            return {f"{r}/{n}" for r, n in zip(t["request_id"].to_pylist(), t["row"].to_pylist())}

        def drained() -> bool:
            for m in sink.consume(1000, 0.5):
                if not m.error():
                    sunk[m.key().decode()] = ({k: v.decode() for k, v in (m.headers() or [])}, json.loads(m.value()))
            keys = captured_keys()
            return len(keys) >= 2999 and keys <= set(sunk)
        fs.wait(drained, "every captured prediction on the sink topic", 60)
        sink.close()
        for key, (headers, line) in sunk.items():
            assert key == f"{line['request_id']}/{line['row']}", (key, line)
            assert headers["freshet-request-id"] == line["request_id"], headers
            assert line["model"] == "fraud" and "prediction" in line, line

        # A dead letter of the stream reaches its Kafka sink, keyed by its event id.
        r = requests.post(f"{fs.url}/v1/streams/pay/events", timeout=10,
                          json=[{"amount": "not a number", "merchant": "m1", "is_fraud": True}])
        assert r.status_code < 300, r.text
        dead = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "dlq-checker",
                         "enable.auto.commit": False})
        dead.assign([TopicPartition("pay-dead-letters", p, 0) for p in range(2)])
        got: list = []
        fs.wait(lambda: got.extend(m for m in dead.consume(10, 0.5) if not m.error()) or got,
                "the dead letter on its topic", 60)
        dead.close()
        line = json.loads(got[0].value())
        headers = {k: v.decode() for k, v in (got[0].headers() or [])}
        assert got[0].key().decode() == line["event_id"] == headers["freshet-event-id"], (line, headers)
        assert line["stream"] == "pay" and line["field"] == "amount", line
        ids = DeltaTable(str(root / "lake" / "dlq" / "pay")).to_pyarrow_table(columns=["_event_id"])
        assert ids["_event_id"].to_pylist() == [line["event_id"]]
        fs.stop()
    finally:
        fs.kill()
        broker.stop()

    assert set(answers) == set(sent), "every event answered, and only those"
    versions = []
    for cid, got in answers.items():
        for key, headers, body in got:
            assert key == sent[cid], (cid, key)
            if "freshet-error" in headers:
                assert "error" in body
                continue
            assert len(headers["freshet-request-id"]) == 32, headers
            assert body["predictions"], body
            versions.append((int(cid.split("/")[2]), int(cid.split("/")[1]), int(headers["freshet-version"])))
    errors = [cid for cid, got in answers.items() if any("freshet-error" in h for _, h, _ in got)]
    assert len(errors) == 1, errors
    # Version 1 answered before the swap, version 2 after it, per partition in order.
    for p in (0, 1):
        vs = [v for _, part, v in sorted(versions) if part == p]
        assert vs[0] == 1 and vs[-1] == 2, vs[:3] + vs[-3:]
        assert vs == sorted(vs), "a partition never goes back to the old champion"
    captured = DeltaTable(str(root / "lake" / "inference" / "fraud")).to_pyarrow_table(columns=["request_id"])
    assert captured.num_rows >= 2999, captured.num_rows


def test_labels_from_a_topic_land_once_across_kills(tmp_path):
    """Feedback on a topic lands in labels/<model> exactly once, though Freshet is
    SIGKILLed at random points while labels are produced; bad messages are skipped."""
    import random
    import threading

    root = tmp_path
    broker = Broker(root)
    fs = Freshet(root)
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic("labels", num_partitions=2, replication_factor=1)])["labels"].result(30)
        (root / "freshet.yaml").write_text(config(broker.bootstrap).replace(
            "    bind:",
            f"""    feedback:
      - {{ type: kafka, brokers: "{broker.bootstrap}", topic: labels, group: fb, partitions: [0, 1] }}
    bind:""").replace("input: payments, output: payments-scored", "input: unused-in, output: unused-out"))
        n = 4000
        bad = {i for i in range(n) if i % 500 == 77}

        def produce_labels():
            p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
            for i in range(n):
                value = b"{oops" if i in bad else json.dumps({"client_request_id": f"c{i}", "label": i % 2 == 0})
                p.produce("labels", key=f"k{i % 9}", value=value)
                if i % 200 == 199:
                    p.poll(0)
                    time.sleep(0.25)
            assert p.flush(60) == 0

        producer = threading.Thread(target=produce_labels)
        producer.start()
        rng = random.Random(7)
        table = root / "lake" / "labels" / "fraud"

        def labelled() -> int:
            if not (table / "_delta_log").exists():
                return 0
            return DeltaTable(str(table)).to_pyarrow_table(columns=["client_request_id"]).num_rows

        progress = []
        for _ in range(8):
            fs.start()
            time.sleep(rng.uniform(0.5, 2.0))
            fs.kill()
            progress.append(labelled())
        producer.join()
        assert len(set(progress)) >= 3, f"the kills did not land mid-stream: {progress}"
        fs.start(wait_ready=True)

        fs.wait(lambda: labelled() >= n - len(bad), f"{n - len(bad)} labels", 90)
        time.sleep(1.0)
        fs.stop()
    finally:
        fs.kill()
        broker.stop()
    ids = DeltaTable(str(table)).to_pyarrow_table(columns=["client_request_id"]).column(0).to_pylist()
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} labels landed twice"
    assert set(ids) == {f"c{i}" for i in range(n) if i not in bad}
    assert "feedback message skipped" in (root / "server.log").read_text()
