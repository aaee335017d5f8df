"""A model bound to Pulsar topics: events in, answers out, against a real Pulsar-protocol
broker (pulsar-lite) with Apache Pulsar's Python client as the independent producer of
events and consumer of answers and predictions.

Two versions are trained with `freshet train`; version 1 is champion when events start
to flow, and the champion alias moves to version 2 while they still do. Every event must
be answered (at least once) on the output topic with its key and the properties naming
its request; the answers switch version with the alias and no event is lost across the
swap; a poison event gets an error answer; every captured prediction is also on the
prediction sink's topic, keyed `<request_id>/<row>`. A broker killed and started again
mid-stream loses no answer. Dead letters of the stream reach its dead-letter sinks (a
Pulsar topic and an NDJSON file), keyed by event id.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pulsar
import pytest
import requests
from deltalake import DeltaTable

from pulsar_broker import PulsarBroker, free_port
from test_kafka import Freshet
from test_kafka_bind import cli

EVENTS = 3000
POISON = 1234


def config(url: str) -> str:
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
      - {{ type: pulsar, url: "{url}", topic: pay-dead-letters }}
      - {{ type: ndjson, path: dead-letters.ndjson }}
models:
  fraud:
    stream: pay
    label: is_fraud
    learner: {{ type: logistic_regression }}
    triggers: {{ initial_rows: 1000000000, concept_drift: none }}
    bind:
      - {{ type: pulsar, url: "{url}", input: payments, output: payments-scored,
          subscription: fraud-scorer, start: earliest }}
    sinks:
      - {{ type: pulsar, url: "{url}", topic: fraud-predictions }}
"""


def client(url: str) -> pulsar.Client:
    return pulsar.Client(url, operation_timeout_seconds=30,
                         logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))


def msg_key(mid) -> str:
    return f"{mid.ledger_id()}:{mid.entry_id()}:{mid.batch_index()}"


def produce(url: str, ids: range, sent: dict, gate: threading.Lock, pause_every: int, pause: float) -> None:
    """Publish events; `sent` maps each event's `ledger:entry:batch` to its key. Each
    chunk is sent and confirmed holding `gate`, so the broker can restart between chunks."""
    c = client(url)
    try:
        producer = c.create_producer("persistent://public/default/payments", batching_enabled=True,
                                     batching_max_publish_delay_ms=5, block_if_queue_full=True)
        ids = list(ids)
        for at in range(0, len(ids), pause_every):
            with gate:
                failed = []
                for i in ids[at:at + pause_every]:
                    value = b"{not json" if i == POISON else json.dumps(
                        {"amount": float(i % 900), "merchant": f"m{i % 7}"}).encode()
                    key = f"k{i % 20}"

                    def done(res, mid, key=key):
                        if res != pulsar.Result.Ok:
                            failed.append(res)
                        else:
                            sent[msg_key(mid)] = key
                    producer.send_async(value, done, partition_key=key)
                producer.flush()
                assert not failed, failed
            time.sleep(pause)
        producer.close()
    finally:
        c.close()


def test_topic_in_score_topic_out_with_a_champion_swap_and_a_broker_restart(tmp_path):
    root = tmp_path
    broker = PulsarBroker(root)
    fs = Freshet(root)
    pc = client(broker.url)
    try:
        (root / "freshet.yaml").write_text(config(broker.url))
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
        status, body = fs.readyz()
        assert "fraud:payments->payments-scored" in json.dumps(body), body

        sent: dict[str, str] = {}
        gate = threading.Lock()
        # Events flow for about 4 s; the champion moves while they do.
        producer = threading.Thread(target=produce, args=(broker.url, range(0, EVENTS), sent, gate, 100, 0.12))
        producer.start()
        time.sleep(1.0)
        r = requests.post(alias, json={"name": "fraud", "alias": "champion", "version": "2"}, timeout=10)
        assert r.status_code == 200, r.text
        invocations = f"{fs.url}/serving-endpoints/fraud/invocations"
        fs.wait(lambda: requests.post(invocations, json={"dataframe_records": [{"amount": 1.0, "merchant": "m1"}]},
                                      timeout=10).json().get("version") == "2", "version 2 served", 30)
        # The broker goes down and comes back while events still flow (between two
        # confirmed chunks): the binding reconnects and answers on.
        with gate:
            broker.kill()
            broker.start()
        assert producer.is_alive(), "the swap and the restart must land while events still flow"
        producer.join()
        assert len(sent) == EVENTS, len(sent)

        answers: dict[str, list[tuple[str, dict, dict]]] = {}
        out = pc.subscribe("persistent://public/default/payments-scored", "checker",
                           initial_position=pulsar.InitialPosition.Earliest)
        deadline = time.time() + 90
        while len(answers) < EVENTS and time.time() < deadline:
            try:
                m = out.receive(timeout_millis=1000)
            except pulsar.Timeout:
                continue
            props = m.properties()
            cid = props["freshet-client-request-id"]
            assert cid.startswith("payments/"), cid
            answers.setdefault(cid.removeprefix("payments/"), []).append(
                (m.partition_key(), props, json.loads(m.data())))
            out.acknowledge(m)
        assert len(answers) >= EVENTS, f"{len(answers)} of {EVENTS} events answered; log:\n" + \
            (root / "server.log").read_text()[-3000:]

        # Every captured prediction is also on the sink topic, keyed <request_id>/<row>.
        sunk: dict[str, tuple[dict, dict]] = {}
        sink = pc.subscribe("persistent://public/default/fraud-predictions", "sink-checker",
                            initial_position=pulsar.InitialPosition.Earliest)

        def captured_keys() -> set[str]:
            t = DeltaTable(str(root / "lake" / "inference" / "fraud")).to_pyarrow_table(columns=["request_id", "row"])
            return {f"{r}/{n}" for r, n in zip(t["request_id"].to_pylist(), t["row"].to_pylist())}

        def drained() -> bool:
            while True:
                try:
                    m = sink.receive(timeout_millis=200)
                except pulsar.Timeout:
                    break
                sunk[m.partition_key()] = (m.properties(), json.loads(m.data()))
                sink.acknowledge(m)
            keys = captured_keys()
            return len(keys) >= EVENTS - 1 and keys <= set(sunk)
        fs.wait(drained, "every captured prediction on the sink topic", 90)
        for key, (props, line) in sunk.items():
            assert key == f"{line['request_id']}/{line['row']}", (key, line)
            assert props["freshet-request-id"] == line["request_id"], props
            assert line["model"] == "fraud" and "prediction" in line, line

        # Dead letters reach the stream's sinks once `dlq/pay` holds them, keyed by event id.
        r = requests.post(f"{fs.url}/v1/streams/pay/events", timeout=10, json=[
            {"amount": "not a number", "merchant": "m1", "is_fraud": True},
            {"amount": 3.5, "merchant": "m2", "is_fraud": False},
            {"amount": [1], "merchant": "m3", "is_fraud": True},
        ])
        assert r.status_code < 300, r.text
        dead: dict[str, tuple[dict, dict]] = {}
        dlq = pc.subscribe("persistent://public/default/pay-dead-letters", "dlq-checker",
                           initial_position=pulsar.InitialPosition.Earliest)

        def dead_ids() -> set[str]:
            path = root / "lake" / "dlq" / "pay"
            if not (path / "_delta_log").exists():
                return set()
            return set(DeltaTable(str(path)).to_pyarrow_table(columns=["_event_id"])["_event_id"].to_pylist())

        def dead_drained() -> bool:
            try:
                m = dlq.receive(timeout_millis=200)
                dead[m.partition_key()] = (m.properties(), json.loads(m.data()))
                dlq.acknowledge(m)
            except pulsar.Timeout:
                pass
            ids = dead_ids()
            return len(ids) == 2 and ids <= set(dead)
        fs.wait(dead_drained, "both dead letters on the dead-letter topic", 60)
        assert set(dead) == dead_ids(), (set(dead), dead_ids())
        for key, (props, line) in dead.items():
            assert props["freshet-event-id"] == key == line["event_id"], (props, line)
            assert line["stream"] == "pay" and line["field"] == "amount" and line["reason"], line
        written = [json.loads(x) for x in (root / "dead-letters.ndjson").read_text().splitlines()]
        assert {x["event_id"] for x in written} == set(dead), written
        fs.stop()
    finally:
        pc.close()
        fs.kill()
        broker.stop()

    assert set(answers) == set(sent), "every event answered, and only those"
    versions = {}
    for cid, got in answers.items():
        for key, props, body in got:
            assert key == sent[cid], (cid, key)
            if "freshet-error" in props:
                assert "error" in body
                continue
            assert len(props["freshet-request-id"]) == 32, props
            assert body["predictions"], body
            # An event answered again after the broker restart keeps its first answer.
            at = tuple(int(x) for x in cid.split(":"))
            versions[at] = min(versions.get(at, 9), int(props["freshet-version"]))
    errors = [cid for cid, got in answers.items() if any("freshet-error" in p for _, p, _ in got)]
    assert len(errors) == 1, errors
    # Version 1 answered before the swap, version 2 after it, in topic order.
    vs = [v for _, v in sorted(versions.items())]
    assert vs[0] == 1 and vs[-1] == 2, vs[:3] + vs[-3:]
    assert vs == sorted(vs), "the topic never goes back to the old champion"


def test_validate_names_the_key_of_a_bad_pulsar_binding_and_sink(tmp_path):
    url = f"pulsar://127.0.0.1:{free_port()}"
    bad = config(url).replace("output: payments-scored", "output: payments") \
        .replace("subscription: fraud-scorer", "subscription: fraud-scorer, subscription_type: shared") \
        .replace(f'{{ type: pulsar, url: "{url}", topic: fraud-predictions }}',
                 '{ type: pulsar, url: "pulsar+ssl://b:6651", topic: "non-persistent://public/default/p" }') \
        .replace(f'{{ type: pulsar, url: "{url}", topic: pay-dead-letters }}',
                 '{ type: pulsar, url: "pulsar://b", topic: pay-dead-letters }')
    (tmp_path / "freshet.yaml").write_text(bad)
    r = subprocess.run([os.environ["FRESHET_BIN"], "--config", str(tmp_path / "freshet.yaml"), "validate"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "models.fraud.bind[0].output" in out and "must differ from input" in out, out
    assert "models.fraud.bind[0].subscription_type" in out, out
    assert "models.fraud.sinks[0].url" in out and "pulsar+ssl" in out, out
    assert "models.fraud.sinks[0].topic" in out and "non-persistent" in out, out
    assert "streams.pay.dead_letter_sinks[0].url" in out, out
    assert "streams.pay.dead_letter_sinks[0].topic" not in out, out
