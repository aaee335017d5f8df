"""The Pulsar source against a real Pulsar-protocol broker (pulsar-lite, see
pulsar_broker.py), fed by an independent client (Apache Pulsar's `pulsar-client`).

* exactly once under SIGKILL: while two producers (one batching, one not) publish,
  `freshet up` is killed at random points 20 times; afterwards the Delta table holds
  every good message once, and every poison message (bad JSON, a wrong type, an
  oversized value) is in `dlq/orders` with its topic and message id;
* key, publish time and a property land in their fields; the backlog is on /metrics;
  /readyz says the source is up; a restart resumes from the table; entries the client
  compressed (ZSTD, LZ4 here, Snappy and ZLIB below) are read;
* a broker that is down at start-up, then killed mid-stream and started again:
  /readyz says so, and ingest resumes without loss or duplicates.

Runs the real binary (FRESHET_BIN); the broker is started and stopped here.
"""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

import pulsar
import pytest
import requests
from deltalake import DeltaTable

from pulsar_broker import PulsarBroker, free_port
from test_kafka import Freshet, count, poison, rows, value

TOPIC = "persistent://public/default/orders"

SCHEMA = """\
    schema:
      fields:
        - { name: id, type: int, required: true }
        - { name: amount, type: float, required: true }
        - { name: account, type: string }
        - { name: account_key, type: string }
        - { name: produced_at, type: timestamp }
        - { name: trace, type: string }
    commit: { max_latency_ms: 100 }
"""


def config(url: str) -> str:
    return f"""\
lake: {{ path: lake, compaction: {{ enabled: false }} }}
streams:
  orders:
    source:
      type: pulsar
      url: "{url}"
      topic: orders
      subscription: freshet-orders
      max_record_bytes: 4096
      metadata: {{ key: account_key, publish_time: produced_at, properties: {{ trace-id: trace }} }}
{SCHEMA}"""


def produce(url: str, ids, batching: bool, pause_every: int = 0, pause: float = 0.0,
            gate: threading.Lock | None = None, compression: str = "NONE") -> None:
    """Publish `ids` (compressed by the client's `compression` codec); with `gate`, each
    chunk of `pause_every` is sent and confirmed while holding it, so the broker can be
    restarted between chunks with nothing in flight."""
    gate = gate or threading.Lock()
    client = pulsar.Client(url, operation_timeout_seconds=30,
                           logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    try:
        producer = client.create_producer(
            TOPIC, batching_enabled=batching, batching_max_publish_delay_ms=5,
            block_if_queue_full=True, compression_type=getattr(pulsar.CompressionType, compression),
        )
        failed = []
        ids = list(ids)
        step = pause_every or len(ids)
        for at in range(0, len(ids), step):
            with gate:
                for i in ids[at:at + step]:
                    producer.send_async(
                        value(i), lambda res, _mid: failed.append(res) if res != pulsar.Result.Ok else None,
                        partition_key=f"a{i % 50}", properties={"trace-id": f"t{i}"},
                    )
                producer.flush()
            time.sleep(pause)
        assert not failed, f"the producer could not deliver {len(failed)} messages: {failed[:3]}"
    finally:
        client.close()


def message_id(position: int) -> tuple[int, int, int]:
    """(ledger, entry, batch index) of a row's `_position` (docs/ingest.md)."""
    return position >> 35, (position >> 12) & ((1 << 23) - 1), position & 4095


def check_exactly_once(root: Path, ids) -> list[dict]:
    good = [i for i in ids if poison(i) is None]
    bad = [i for i in ids if poison(i) is not None]
    got = rows(root)
    seen = [r["id"] for r in got]
    dupes = len(seen) - len(set(seen))
    assert dupes == 0, f"{dupes} messages landed twice"
    assert sorted(seen) == sorted(good), (
        f"missing {len(set(good) - set(seen))}, unexpected {len(set(seen) - set(good))}")
    for r in got:
        assert r["account_key"] == r["account"], r
        assert r["trace"] == f"t{r['id']}", r
        assert r["_source"] == f"pulsar:{TOPIC}", r
        assert r["produced_at"] is not None, r
    assert len({r["_position"] for r in got}) == len(got), "two rows share a message position"
    dead = rows(root, "dlq")
    places = {(d["_source"], d["_position"]) for d in dead}
    assert len(dead) == len(bad) == len(places), (len(dead), len(bad), len(places))
    assert all(d["_source"] == f"pulsar:{TOPIC}" for d in dead)
    reasons = " | ".join(sorted({d["reason"] for d in dead}))
    assert "max_record_bytes" in reasons and "malformed" in reasons, reasons
    return got


def restart_after_kill(broker: PulsarBroker, gate: threading.Lock) -> None:
    """Restart the broker (its data kept) after Freshet was SIGKILLed, while the
    publishers hold nothing in flight (`gate`).

    pulsar-lite 0.2.0 can keep a consumer whose connection was reset (a process killed
    with messages unread in its socket) as the failover subscription's active consumer,
    and the next Freshet then stands by behind it and reads nothing. A real broker drops
    a consumer with its connection. The restart clears that state and keeps the topic
    and the subscription's acknowledged position on disk, so each start still resumes
    from whatever the kill left."""
    with gate:
        broker.kill()
        broker.start()


@pytest.fixture
def broker(tmp_path):
    b = PulsarBroker(tmp_path)
    yield b
    b.stop()


def test_exactly_once_while_killed_at_random(tmp_path, broker):
    """20 SIGKILLs at random points while two clients publish; every message lands once."""
    (tmp_path / "freshet.yaml").write_text(config(broker.url))
    batched, single = range(0, 16_000), range(16_000, 20_000)
    gate = threading.Lock()
    producers = [
        threading.Thread(target=produce, args=(broker.url, batched, True, 400, 0.4, gate)),
        threading.Thread(target=produce, args=(broker.url, single, False, 100, 0.4, gate)),
    ]
    for p in producers:
        p.start()
    rng = random.Random(20261207)
    fs = Freshet(tmp_path)
    progress = []
    try:
        for _ in range(20):
            fs.start()
            time.sleep(rng.uniform(0.4, 2.5))
            fs.kill()
            progress.append(count(tmp_path))
            restart_after_kill(broker, gate)
        for p in producers:
            p.join()
        fs.start(wait_ready=True)
        ids = range(0, 20_000)
        total = sum(1 for i in ids if poison(i) is None)
        fs.wait(lambda: count(tmp_path) >= total, f"{total} rows", 120)
        time.sleep(1.0)  # anything still arriving would be a duplicate
        fs.stop()
    finally:
        fs.kill()
    assert len(set(progress)) >= 5, f"too few cycles made progress: {progress}"
    got = check_exactly_once(tmp_path, ids)
    # Both kinds of entry were read: batches (index > 0) and single messages.
    batch_indexes = {message_id(r["_position"])[2] for r in got}
    assert 0 in batch_indexes and max(batch_indexes) > 0, sorted(batch_indexes)[:10]


def test_metadata_backlog_readiness_and_restart(tmp_path, broker):
    (tmp_path / "freshet.yaml").write_text(config(broker.url))
    first = range(3000)
    produce(broker.url, first, batching=True, compression="ZSTD")
    fs = Freshet(tmp_path)
    fs.start(wait_ready=True)
    try:
        good = sum(1 for i in first if poison(i) is None)
        fs.wait(lambda: count(tmp_path) >= good, f"{good} rows", 60)
        fs.wait(lambda: fs.readyz()[0] == 200, "ready", 30)
        assert fs.readyz()[1]["sources"]["orders"]["status"] == "up"
        gauge = ('freshet_source_backlog_messages{stream="orders",subscription="freshet-orders",'
                 f'topic="{TOPIC}"}} 0')
        fs.wait(lambda: gauge in requests.get(f"{fs.url}/metrics", timeout=5).text,
                "a backlog of 0 on /metrics", 30)
        fs.stop()
        # Published while Freshet is down: the restart resumes from the table.
        second = range(3000, 5000)
        produce(broker.url, second, batching=False, compression="LZ4")
        fs.start(wait_ready=True)
        ids = range(0, 5000)
        total = sum(1 for i in ids if poison(i) is None)
        fs.wait(lambda: count(tmp_path) >= total, f"{total} rows", 60)
        time.sleep(1.0)
        fs.stop()
    finally:
        fs.kill()
    got = check_exactly_once(tmp_path, ids)
    r = next(r for r in got if r["id"] == 42)
    assert (r["account_key"], r["trace"]) == ("a42", "t42")


def test_broker_down_at_start_then_killed_mid_stream(tmp_path):
    broker = PulsarBroker(tmp_path, start=False)
    (tmp_path / "freshet.yaml").write_text(config(broker.url))
    fs = Freshet(tmp_path)
    fs.start(wait_ready=True)
    try:
        def source_status():
            code, body = fs.readyz()
            return code, body.get("sources", {}).get("orders", {})

        fs.wait(lambda: source_status()[0] == 503 and source_status()[1].get("status") == "down",
                "/readyz to report the broker down", 30)
        assert "pulsar" in source_status()[1]["detail"], source_status()
        broker.start()
        first = range(0, 2000)
        produce(broker.url, first, batching=True, compression="SNAPPY")
        good = sum(1 for i in first if poison(i) is None)
        fs.wait(lambda: count(tmp_path) >= good, f"{good} rows", 60)
        fs.wait(lambda: source_status()[0] == 200, "/readyz to report the source up", 30)
        # The broker dies (its data on disk survives) and comes back on the same port.
        broker.kill()
        fs.wait(lambda: source_status()[1].get("status") in ("down", "connecting"),
                "/readyz to report the lost broker", 30)
        broker.start()
        second = range(2000, 4000)
        produce(broker.url, second, batching=True, compression="ZLib")
        ids = range(0, 4000)
        total = sum(1 for i in ids if poison(i) is None)
        fs.wait(lambda: count(tmp_path) >= total, f"{total} rows", 90)
        fs.wait(lambda: source_status()[0] == 200, "/readyz to report the source up again", 30)
        time.sleep(1.0)
        fs.stop()
    finally:
        fs.kill()
        broker.stop()
    check_exactly_once(tmp_path, ids)


def test_validate_names_the_key_of_a_bad_pulsar_source(tmp_path):
    import os
    import subprocess
    bad = config(f"pulsar+ssl://127.0.0.1:{free_port()}").replace(
        "subscription: freshet-orders", "subscription: freshet-orders\n      subscription_type: shared")
    (tmp_path / "freshet.yaml").write_text(bad)
    r = subprocess.run([os.environ["FRESHET_BIN"], "--config", str(tmp_path / "freshet.yaml"), "validate"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "streams.orders.source.url" in out and "pulsar+ssl" in out, out
    assert "streams.orders.source.subscription_type" in out and "failover" in out, out


def test_labels_from_a_topic_land_once_across_kills(tmp_path, broker):
    """Feedback on a Pulsar topic lands in labels/<model> exactly once, though Freshet is
    SIGKILLed at random points while labels are published; bad messages are skipped."""
    (tmp_path / "freshet.yaml").write_text(f"""\
lake: {{ path: lake, compaction: {{ enabled: false }} }}
registry: {{ path: registry.db }}
streams:
  pay:
    source: {{ type: http }}
    schema:
      fields:
        - {{ name: amount, type: float }}
        - {{ name: is_fraud, type: bool }}
models:
  fraud:
    stream: pay
    label: is_fraud
    learner: {{ type: logistic_regression }}
    triggers: {{ initial_rows: 1000000000, concept_drift: none }}
    feedback:
      - {{ type: pulsar, url: "{broker.url}", topic: labels, subscription: fb }}
""")
    n = 4000
    bad = {i for i in range(n) if i % 500 == 77}

    gate = threading.Lock()

    def publish_labels():
        client = pulsar.Client(broker.url, operation_timeout_seconds=30,
                               logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
        p = client.create_producer("persistent://public/default/labels", batching_max_publish_delay_ms=5,
                                   block_if_queue_full=True)
        for at in range(0, n, 100):
            with gate:
                for i in range(at, min(at + 100, n)):
                    body = b"{oops" if i in bad else json.dumps({"client_request_id": f"c{i}", "label": i % 2 == 0}).encode()
                    p.send_async(body, None)
                p.flush()
            time.sleep(0.3)
        client.close()

    publisher = threading.Thread(target=publish_labels)
    publisher.start()
    table = tmp_path / "lake" / "labels" / "fraud"

    def labelled() -> int:
        if not (table / "_delta_log").exists():
            return 0
        return DeltaTable(str(table)).to_pyarrow_table(columns=["client_request_id"]).num_rows

    rng = random.Random(11)
    fs = Freshet(tmp_path)
    progress = []
    try:
        for _ in range(8):
            fs.start()
            time.sleep(rng.uniform(0.5, 2.0))
            fs.kill()
            progress.append(labelled())
            restart_after_kill(broker, gate)
        publisher.join()
        assert len(set(progress)) >= 3, f"the kills did not land mid-stream: {progress}"
        fs.start(wait_ready=True)
        fs.wait(lambda: labelled() >= n - len(bad), f"{n - len(bad)} labels", 90)
        time.sleep(1.0)
        fs.stop()
    finally:
        fs.kill()
    ids = DeltaTable(str(table)).to_pyarrow_table(columns=["client_request_id"]).column(0).to_pylist()
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} labels landed twice"
    assert set(ids) == {f"c{i}" for i in range(n) if i not in bad}
    assert "feedback message skipped" in (tmp_path / "server.log").read_text()
