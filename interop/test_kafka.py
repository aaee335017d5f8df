"""The Kafka source against a real Kafka-protocol broker (tansu, see kafka_broker.py),
fed by an independent client (confluent-kafka).

* exactly once under SIGKILL: while the client produces, `freshet up` is killed at
  random points 20 times; afterwards the Delta table holds every good record once, and
  every poison record (bad JSON, a wrong type, an oversized value) is in `dlq/orders`
  with its topic, partition and offset;
* a consumer group: records, key, offset, timestamp and a header land in their fields;
  lag is on /metrics; a restart resumes from the table;
* two nodes in one consumer group share the partitions of a topic into one table, and
  when one stops the other takes its partitions over from the table's positions;
* a broker that is unreachable at start-up, then lost mid-stream: /readyz says so, and
  ingest resumes without loss when it is back.

Runs the real binary (FRESHET_BIN); the broker is started and stopped here.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from deltalake import DeltaTable

from kafka_broker import Broker

SCHEMA = """\
    schema:
      fields:
        - { name: id, type: int, required: true }
        - { name: amount, type: float, required: true }
        - { name: account, type: string }
        - { name: account_key, type: string }
        - { name: kafka_offset, type: int }
        - { name: produced_at, type: timestamp }
        - { name: trace, type: string }
    commit: { max_latency_ms: 100 }
"""


def config(bootstrap: str, extra: str = "") -> str:
    return f"""\
lake: {{ path: lake, compaction: {{ enabled: false }} }}
streams:
  orders:
    source:
      type: kafka
      brokers: "{bootstrap}"
      topics: [orders]
      group: freshet-orders
      max_record_bytes: 4096
      metadata: {{ key: account_key, offset: kafka_offset, timestamp: produced_at, headers: {{ trace-id: trace }} }}
{extra}{SCHEMA}"""


def poison(i: int) -> str | None:
    """The kind of poison record `i` is, if any."""
    if i % 997 == 13:
        return "bad json"
    if i % 1499 == 7:
        return "wrong type"
    if i % 1999 == 3:
        return "oversized"
    return None


def value(i: int) -> bytes:
    kind = poison(i)
    if kind == "bad json":
        return b'{"id": ' + str(i).encode() + b', "amount": '
    if kind == "wrong type":
        return json.dumps({"id": i, "amount": "lots", "account": f"a{i % 50}"}).encode()
    if kind == "oversized":
        return json.dumps({"id": i, "amount": 1.0, "account": "x" * 5000}).encode()
    return json.dumps({"id": i, "amount": round(i * 0.25, 2), "account": f"a{i % 50}"}).encode()


def produce(bootstrap: str, ids: range, pause_every: int = 0, pause: float = 0.0,
            unbatched: bool = False) -> None:
    # tansu 0.6.0 reports a partition's high watermark as its last batch's base offset
    # + 1; one record per batch makes that the true high watermark.
    extra = {"batch.num.messages": 1, "linger.ms": 0} if unbatched else {"linger.ms": 5}
    p = Producer({"bootstrap.servers": bootstrap, **extra})
    for n, i in enumerate(ids):
        while True:
            try:
                p.produce("orders", key=f"a{i % 50}", value=value(i), headers={"trace-id": f"t{i}"})
                break
            except BufferError:
                p.poll(0.1)
        if pause_every and n % pause_every == pause_every - 1:
            p.poll(0)
            time.sleep(pause)
    assert p.flush(60) == 0, "the producer could not deliver everything"


def create_topic(bootstrap: str, partitions: int = 3) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic("orders", num_partitions=partitions, replication_factor=1)]).values():
        f.result(30)


class Freshet:
    def __init__(self, root: Path):
        self.root = root
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, wait_ready: bool = False) -> None:
        binary = os.environ.get("FRESHET_BIN") or pytest.fail("set FRESHET_BIN to the freshet binary")
        addr = self.root / "addr"
        addr.unlink(missing_ok=True)
        log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(
            [binary, "--config", str(self.root / "freshet.yaml"), "up", "--listen", "127.0.0.1:0",
             "--addr-file", str(addr)],
            cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
        )
        if wait_ready:
            self.wait(lambda: addr.exists() and addr.read_text().strip(), "the address file", 60)
            self.url = f"http://{addr.read_text().strip()}"

    def wait(self, cond, what: str, timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if cond():
                return
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        log = (self.root / "server.log").read_text(errors="replace")[-4000:]
        pytest.fail(f"timed out waiting for {what}; server log:\n{log}")

    def readyz(self) -> tuple[int, dict]:
        r = requests.get(f"{self.url}/readyz", timeout=5)
        return r.status_code, r.json()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                pytest.fail("freshet did not stop on SIGTERM within 60 s")


def tables(root: Path) -> str:
    """`freshet tables` on root/freshet.yaml."""
    binary = os.environ.get("FRESHET_BIN") or pytest.fail("set FRESHET_BIN to the freshet binary")
    r = subprocess.run([binary, "--config", str(root / "freshet.yaml"), "tables"], cwd=root,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def rows(root: Path, kind: str = "events", columns=None) -> list[dict]:
    path = root / "lake" / kind / "orders"
    if not (path / "_delta_log").exists():
        return []
    return DeltaTable(str(path)).to_pyarrow_table(columns=columns).to_pylist()


def count(root: Path) -> int:
    return len(rows(root, columns=["id"]))


def check_exactly_once(root: Path, ids: range) -> None:
    good = [i for i in ids if poison(i) is None]
    bad = [i for i in ids if poison(i) is not None]
    got = rows(root)
    seen = [r["id"] for r in got]
    dupes = len(seen) - len(set(seen))
    assert dupes == 0, f"{dupes} records landed twice"
    assert sorted(seen) == good, f"missing {len(set(good) - set(seen))}, unexpected {len(set(seen) - set(good))}"
    for r in got:
        assert r["account_key"] == r["account"], r
        assert r["kafka_offset"] == r["_position"], r
        assert r["trace"] == f"t{r['id']}", r
        assert r["_source"].startswith("kafka:orders:"), r
        assert r["produced_at"] is not None, r
    dead = rows(root, "dlq")
    places = {(d["_source"], d["_position"]) for d in dead}
    assert len(dead) == len(bad) == len(places), (len(dead), len(bad), len(places))
    assert all(d["_source"].startswith("kafka:orders:") for d in dead)
    reasons = " | ".join(sorted({d["reason"] for d in dead}))
    assert "max_record_bytes" in reasons and "malformed" in reasons, reasons


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    yield b
    b.stop()


def test_exactly_once_while_killed_at_random(tmp_path, broker):
    """20 SIGKILLs at random points while a client produces; every record lands once."""
    create_topic(broker.bootstrap)
    # Manual assignment: tansu 0.6.0 keeps a killed member in its group until the
    # session times out, which would stall every restart; the group path has its own test.
    (tmp_path / "freshet.yaml").write_text(config(broker.bootstrap, "      partitions: [0, 1, 2]\n"))
    ids = range(24_000)
    producer = threading.Thread(target=produce, args=(broker.bootstrap, ids, 400, 0.5))
    producer.start()
    rng = random.Random(20261206)
    fs = Freshet(tmp_path)
    progress = []
    try:
        for _ in range(20):
            fs.start()
            time.sleep(rng.uniform(0.4, 2.5))
            fs.kill()
            progress.append(count(tmp_path))
        producer.join()
        fs.start(wait_ready=True)
        total = sum(1 for i in ids if poison(i) is None)
        fs.wait(lambda: count(tmp_path) >= total, f"{total} rows", 120)
        time.sleep(1.0)  # anything still arriving would be a duplicate
        fs.stop()
    finally:
        fs.kill()
    # The kills landed mid-stream: the table grew across the cycles.
    assert len(set(progress)) >= 5, f"too few cycles made progress: {progress}"
    check_exactly_once(tmp_path, ids)


def test_group_metadata_lag_and_restart(tmp_path, broker):
    create_topic(broker.bootstrap)
    extra = "      options: { session.timeout.ms: '6000', heartbeat.interval.ms: '1000' }\n"
    (tmp_path / "freshet.yaml").write_text(config(broker.bootstrap, extra))
    first = range(3000)
    produce(broker.bootstrap, first)
    fs = Freshet(tmp_path)
    fs.start(wait_ready=True)
    try:
        good = sum(1 for i in first if poison(i) is None)
        fs.wait(lambda: count(tmp_path) >= good, f"{good} rows", 60)
        fs.wait(lambda: fs.readyz()[0] == 200, "ready", 30)
        assert fs.readyz()[1]["sources"]["orders"]["status"] == "up"
        fs.wait(
            lambda: 'freshet_source_lag_records{partition="0",stream="orders",topic="orders"}'
            in requests.get(f"{fs.url}/metrics", timeout=5).text,
            "the lag gauge",
            30,
        )
        fs.stop()
        produce(broker.bootstrap, range(3000, 4000), unbatched=True)
        # `freshet tables` asks the brokers how far the table is behind: the 1,000
        # records produced while Freshet was down.
        out = tables(tmp_path)
        behind = [int(n) for n in re.findall(r"^orders\s+orders/\d+\s+(\d+) records$", out, re.M)]
        assert len(behind) == 3 and sum(behind) == 1000, out
        fs.start(wait_ready=True)
        good = sum(1 for i in range(4000) if poison(i) is None)
        fs.wait(lambda: count(tmp_path) >= good, f"{good} rows", 60)
        time.sleep(1.0)
        fs.stop()
    finally:
        fs.kill()
    check_exactly_once(tmp_path, range(4000))


def test_two_nodes_in_one_group_split_the_partitions_and_one_takes_over(tmp_path, broker):
    """Several nodes (issue 14): the group splits the partitions between two `freshet up`
    processes writing one table; when one stops, the other resumes its partitions from
    the positions in the table. Every record lands once."""
    create_topic(broker.bootstrap, partitions=4)
    shared = tmp_path / "shared"
    shared.mkdir()
    extra = "      options: { session.timeout.ms: '6000', heartbeat.interval.ms: '1000' }\n"
    text = config(broker.bootstrap, extra).replace("lake: { path: lake,", f"lake: {{ path: \"{shared / 'lake'}\",")
    nodes = []
    for name in ("a", "b"):
        d = tmp_path / name
        d.mkdir()
        (d / "freshet.yaml").write_text(text)
        nodes.append(Freshet(d))
    a, b = nodes
    try:
        for n in nodes:
            n.start(wait_ready=True)
        first = range(4000)
        produce(broker.bootstrap, first, pause_every=500, pause=0.3)
        good = sum(1 for i in first if poison(i) is None)
        a.wait(lambda: count(shared) >= good, f"{good} rows", 120)

        def assigned(n: Freshet) -> set[str]:
            log = re.sub(r"\x1b\[[0-9;]*m", "", (n.root / "server.log").read_text(errors="replace"))
            return set(re.findall(r"kafka partition assigned.*?partition=(\d+)", log))
        # Both nodes were given partitions at some point, and between them all four.
        assert assigned(a) and assigned(b), (assigned(a), assigned(b))
        assert assigned(a) | assigned(b) == {"0", "1", "2", "3"}

        # b leaves the group cleanly; a takes its partitions from the table's positions.
        b.stop()
        produce(broker.bootstrap, range(4000, 6000))
        good = sum(1 for i in range(6000) if poison(i) is None)
        a.wait(lambda: count(shared) >= good, f"{good} rows", 120)
        time.sleep(1.0)  # anything still arriving would be a duplicate
        a.stop()
    finally:
        for n in nodes:
            n.kill()
    check_exactly_once(shared, range(6000))


def test_broker_down_at_start_and_lost_mid_stream(tmp_path):
    b = Broker(tmp_path, start_relay=False)
    fs = Freshet(tmp_path)
    try:
        (tmp_path / "freshet.yaml").write_text(config(b.bootstrap, "      partitions: [0, 1, 2]\n"))
        fs.start(wait_ready=True)
        # Unreachable: the server runs, /readyz says why it is not ready.
        fs.wait(lambda: fs.readyz()[1].get("sources", {}).get("orders", {}).get("status") == "down",
                "the source reported down", 30)
        code, body = fs.readyz()
        assert code == 503 and "unreachable" in body["sources"]["orders"]["detail"], body
        b.relay.restore()
        create_topic(b.bootstrap)
        produce(b.bootstrap, range(1000))
        fs.wait(lambda: count(tmp_path) >= sum(1 for i in range(1000) if poison(i) is None), "first rows", 60)
        fs.wait(lambda: fs.readyz()[0] == 200, "ready", 30)
        # Lost mid-stream, then back.
        b.relay.cut()
        fs.wait(lambda: fs.readyz()[0] == 503, "the outage reported", 60)
        b.relay.restore()
        produce(b.bootstrap, range(1000, 2000))
        fs.wait(lambda: count(tmp_path) >= sum(1 for i in range(2000) if poison(i) is None), "all rows", 90)
        fs.wait(lambda: fs.readyz()[0] == 200, "ready again", 30)
        time.sleep(1.0)
        fs.stop()
    finally:
        fs.kill()
        b.stop()
    check_exactly_once(tmp_path, range(2000))


def test_validate_names_bad_connector_settings(tmp_path):
    """`freshet validate` checks the Kafka settings offline, naming each bad key."""
    binary = os.environ.get("FRESHET_BIN") or pytest.fail("set FRESHET_BIN to the freshet binary")
    (tmp_path / "freshet.yaml").write_text("""\
streams:
  orders:
    source:
      type: kafka
      brokers: "localhost"
      topics: ["bad topic"]
      group: ""
      metadata: { key: nope }
      options: { enable.auto.commit: "true" }
    schema: { fields: [ { name: id, type: int }, { name: label, type: bool } ] }
models:
  m:
    stream: orders
    label: label
    bind:
      - { type: kafka, brokers: "127.0.0.1:9092", input: scored, output: scored, group: g }
""")
    r = subprocess.run([binary, "--config", str(tmp_path / "freshet.yaml"), "validate"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, r.stdout
    for path in ("streams.orders.source.brokers", "streams.orders.source.topics[0]",
                 "streams.orders.source.group", "streams.orders.source.metadata.key",
                 "streams.orders.source.options.enable.auto.commit", "models.m.bind[0].output"):
        assert path in r.stderr, (path, r.stderr)
