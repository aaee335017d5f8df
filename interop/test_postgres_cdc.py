"""The Postgres CDC source against a real PostgreSQL (see pg_server.py), written to by an
independent client (psycopg).

* exactly once under SIGKILL: a table with rows before Freshet starts, and a writer
  inserting (also by COPY), updating and deleting while `freshet up` is killed at random
  points 20 times, the first during the snapshot; afterwards every key's events, in
  commit LSN order, are its snapshot row or insert, then each update exactly once
  (versions consecutive), then its delete, and the last one matches the database; rows
  of the wrong type are in `dlq/orders` with their LSN and never stall the stream;
* a database that is down at start-up, then restarted mid-stream: /readyz says so, and
  capture resumes without loss; the password in the URL never reaches the log or /readyz;
* TLS to the database: a server that takes only TLS connections, with a certificate of
  a private CA, is captured once the CA is trusted (`tls_ca_file`), refused with the
  reason before that, and a URL with `sslmode=disable` is turned away by the server;
* `freshet validate` names bad settings by key path.

Runs the real binary (FRESHET_BIN); the database is started and stopped here.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

import psycopg
import pytest
import requests
from deltalake import DeltaTable

from pg_server import PASSWORD, Postgres
from test_kafka import Freshet, rows, tables

SLOT = "freshet_orders"


def config(url: str) -> str:
    return f"""\
lake: {{ path: lake, compaction: {{ enabled: false }} }}
streams:
  orders:
    source:
      type: postgres_cdc
      url: "{url}"
      tables: [public.orders]
      slot: {SLOT}
      max_batch: 2000
      metadata: {{ table: source_table, commit_time: committed_at }}
    schema:
      fields:
        - {{ name: id, type: int, required: true }}
        - {{ name: ver, type: int }}
        - {{ name: amount, type: float }}
        - {{ name: code, type: int }}
        - {{ name: seen_at, type: timestamp }}
        - {{ name: change_op, type: string }}
        - {{ name: change_lsn, type: int }}
        - {{ name: source_table, type: string }}
        - {{ name: committed_at, type: timestamp }}
    commit: {{ max_latency_ms: 100 }}
"""


TABLE = """
CREATE TABLE orders (
    id int PRIMARY KEY,
    ver int NOT NULL DEFAULT 0,
    amount float8,
    code text,
    seen_at timestamptz NOT NULL DEFAULT now()
)"""


def is_poison(i: int) -> bool:
    """Rows whose `code` is not an integer: the stream declares it int."""
    return i % 211 == 5


def code(i: int) -> str:
    return f"x{i}" if is_poison(i) else str(i % 1000)


class Writer:
    """Transactions of inserts (some by COPY), updates and deletes; keys alive are
    tracked so every update and delete hits a row."""

    def __init__(self, dsn: str, first_id: int, seed: int):
        self.dsn = dsn
        self.next_id = first_id
        self.alive: list[int] = []
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.transactions = 0

    def preload(self, n: int) -> None:
        with psycopg.connect(self.dsn) as c:
            with c.cursor().copy("COPY orders (id, amount, code) FROM STDIN") as cp:
                for i in range(self.next_id, self.next_id + n):
                    cp.write_row((i, i * 0.5, code(i)))
        self.alive.extend(i for i in range(self.next_id, self.next_id + n) if not is_poison(i))
        self.next_id += n

    def step(self, c: psycopg.Connection) -> None:
        kind = self.rng.choices(["insert", "copy", "update", "delete"], [4, 1, 5, 1])[0]
        with c.transaction():
            if kind == "insert" or not self.alive:
                ids = list(range(self.next_id, self.next_id + self.rng.randint(1, 5)))
                c.execute("INSERT INTO orders (id, amount, code) SELECT i, i * 0.5, c FROM "
                          "unnest(%s::int[], %s::text[]) AS t(i, c)", (ids, [code(i) for i in ids]))
            elif kind == "copy":
                ids = list(range(self.next_id, self.next_id + self.rng.randint(5, 40)))
                with c.cursor().copy("COPY orders (id, amount, code) FROM STDIN") as cp:
                    for i in ids:
                        cp.write_row((i, i * 0.5, code(i)))
            elif kind == "update":
                ids = self.rng.sample(self.alive, min(len(self.alive), self.rng.randint(1, 4)))
                c.execute("UPDATE orders SET ver = ver + 1, amount = amount + 1 WHERE id = ANY(%s)", (ids,))
                ids = []
            else:
                victim = self.alive.pop(self.rng.randrange(len(self.alive)))
                c.execute("DELETE FROM orders WHERE id = %s", (victim,))
                ids = []
        self.next_id += len(ids)
        self.alive.extend(i for i in ids if not is_poison(i))
        self.transactions += 1

    def run(self, pause: float) -> None:
        while not self.stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as c:
                    while not self.stop.is_set():
                        self.step(c)
                        time.sleep(pause)
            except psycopg.OperationalError:
                time.sleep(0.2)  # the database is restarting


def dlq_ahead(root: Path) -> int:
    """1 when the dead-letter table holds a later slot position than the event table:
    a kill between the two commits, which the restart must not dead-letter twice."""
    def position(kind: str) -> int:
        path = root / "lake" / kind / "orders"
        if not (path / "_delta_log").exists():
            return -1
        v = DeltaTable(str(path)).transaction_version(f"pgcdc:{SLOT}")
        return -1 if v is None else v
    return int(position("dlq") > position("events"))


def check_exactly_once(root: Path, dsn: str) -> None:
    events = rows(root)
    assert events, "no events landed"
    by_id: dict[int, list[dict]] = defaultdict(list)
    for e in sorted(events, key=lambda e: (e["change_lsn"], e["_position"])):
        by_id[e["id"]].append(e)
    with psycopg.connect(dsn) as c:
        final = {r[0]: r for r in c.execute("SELECT id, ver, amount FROM orders")}
    for i, evs in by_id.items():
        ops = [e["change_op"] for e in evs]
        assert ops[0] in ("snapshot", "insert"), (i, ops)
        assert all(o == "update" for o in ops[1:-1]), (i, ops)
        assert ops.count("delete") <= 1 and ops.count("snapshot") + ops.count("insert") == 1, (i, ops)
        vers = [e["ver"] for e in evs if e["change_op"] != "delete"]
        assert vers == list(range(vers[0], vers[0] + len(vers))), f"id {i}: versions {vers} (lost or repeated)"
        if i in final:
            assert ops[-1] != "delete", (i, ops)
            assert (evs[-1]["ver"], evs[-1]["amount"]) == final[i][1:], (i, evs[-1], final[i])
        else:
            assert ops[-1] == "delete", f"id {i} was deleted but its delete did not arrive: {ops}"
        for e in evs:
            assert e["source_table"] == "public.orders", e
            # A delete carries the key only (the default replica identity).
            assert (e["seen_at"] is None) == (e["change_op"] == "delete"), e
            assert (e["committed_at"] is None) == (e["change_op"] == "snapshot"), e
    missing = [i for i in final if i not in by_id and not is_poison(i)]
    assert not missing, f"{len(missing)} rows never arrived, e.g. {missing[:5]}"
    dead = rows(root, "dlq")
    poison = [i for i in final if is_poison(i)]
    assert len(dead) == len(poison), (len(dead), len(poison))
    assert len({d["_position"] for d in dead}) == len(dead)
    # The position of a dead change is its LSN; of a dead snapshot row, its rank (< 0).
    assert all(d["_source"] == f"postgres:{SLOT}" and d["_position"] != 0 for d in dead), dead[:2]
    assert all(d["field"] == "code" for d in dead), dead[:2]


@pytest.fixture
def pg():
    p = Postgres()
    yield p
    p.close()


def test_exactly_once_while_killed_at_random(tmp_path, pg):
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        c.execute(TABLE)
    writer = Writer(pg.dsn, 0, seed=20261206)
    writer.preload(150_000)
    (tmp_path / "freshet.yaml").write_text(config(pg.url))
    rng = random.Random(20261207)
    fs = Freshet(tmp_path)
    progress = []
    log = tmp_path / "server.log"
    interrupted_snapshot = False
    dead_letters_ahead = 0  # kills between the dead-letter and the event commit
    w = threading.Thread(target=writer.run, args=(0.01,))
    w.start()
    try:
        for cycle in range(20):
            before = log.stat().st_size if log.exists() else 0
            fs.start()
            if cycle == 0:
                fs.wait(lambda: "postgres snapshot started" in log.read_text(errors="replace")[before:],
                        "the snapshot to start", 60)
                time.sleep(0.2)
            elif cycle == 1:
                # Aim for the narrow window: the snapshot's dead letters committed, its
                # events not yet. The next start retakes the snapshot and must not
                # dead-letter those rows again.
                deadline = time.time() + 60
                while time.time() < deadline and not dlq_ahead(tmp_path) and \
                        "snapshot committed" not in log.read_text(errors="replace")[before:]:
                    time.sleep(0.005)
            else:
                time.sleep(rng.uniform(0.4, 2.5))
            fs.kill()
            text = log.read_bytes()[before:].decode(errors="replace")
            interrupted_snapshot |= "snapshot started" in text and "snapshot committed" not in text
            dead_letters_ahead += dlq_ahead(tmp_path)
            progress.append(len(rows(tmp_path, columns=["id"])))
        writer.stop.set()
        w.join(60)
        fs.start(wait_ready=True)
        with psycopg.connect(pg.dsn) as c:
            target = c.execute("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8").fetchone()[0]
        fs.wait(lambda: "postgres snapshot committed" in log.read_text(errors="replace"), "the snapshot", 120)
        # Caught up once the lag gauge says the table holds the WAL written so far.
        def caught_up() -> bool:
            with psycopg.connect(pg.dsn) as c:
                confirmed = c.execute(
                    "SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::int8 FROM pg_replication_slots "
                    "WHERE slot_name = %s", (SLOT,)).fetchone()[0]
            return confirmed >= target
        fs.wait(caught_up, "the slot to pass the last write", 120)
        fs.wait(lambda: 'freshet_cdc_lag_bytes{stream="orders"}'
                in requests.get(f"{fs.url}/metrics", timeout=5).text, "the lag gauge", 30)
        time.sleep(1.0)  # anything still arriving would be a duplicate
        fs.stop()
    finally:
        writer.stop.set()
        fs.kill()
    assert interrupted_snapshot, "no kill landed inside the snapshot"
    assert len(set(progress)) >= 5, f"too few cycles made progress: {progress}"
    assert writer.transactions > 200, writer.transactions
    assert dead_letters_ahead, "no kill landed between the dead-letter and the event commit"
    check_exactly_once(tmp_path, pg.dsn)


def test_database_down_at_start_and_restarted_mid_stream(tmp_path):
    pg = Postgres(start=False)
    fs = Freshet(tmp_path)
    try:
        (tmp_path / "freshet.yaml").write_text(config(pg.url))
        fs.start(wait_ready=True)
        fs.wait(lambda: fs.readyz()[1].get("sources", {}).get("orders", {}).get("status") == "down",
                "the source reported down", 30)
        code_, body = fs.readyz()
        assert code_ == 503 and "connect" in body["sources"]["orders"]["detail"], body
        pg.start()
        with psycopg.connect(pg.dsn, autocommit=True) as c:
            c.execute(TABLE)
        writer = Writer(pg.dsn, 0, seed=7)
        writer.preload(500)
        fs.wait(lambda: len(rows(tmp_path, columns=["id"])) >= 490, "the snapshot rows", 90)
        fs.wait(lambda: fs.readyz()[0] == 200, "ready", 30)
        with psycopg.connect(pg.dsn, autocommit=True) as c:
            for _ in range(100):
                writer.step(c)
        # Restarted mid-stream: reported, then resumed where the table left off.
        pg.stop()
        fs.wait(lambda: fs.readyz()[0] == 503, "the outage reported", 60)
        pg.start()
        with psycopg.connect(pg.dsn, autocommit=True) as c:
            for _ in range(100):
                writer.step(c)
            target = c.execute("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8").fetchone()[0]

        def caught_up() -> bool:
            with psycopg.connect(pg.dsn) as c:
                return c.execute(
                    "SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::int8 >= %s FROM pg_replication_slots "
                    "WHERE slot_name = %s", (target, SLOT)).fetchone()[0]
        fs.wait(caught_up, "the slot to pass the last write", 90)
        fs.wait(lambda: fs.readyz()[0] == 200, "ready again", 30)
        time.sleep(1.0)
        fs.stop()
        check_exactly_once(tmp_path, pg.dsn)
        # `freshet tables` asks the database how far the table is behind: nothing yet,
        # then the WAL of what is written while Freshet is down.
        def behind() -> int:
            out = tables(tmp_path)
            m = re.search(rf"^orders\s+slot {SLOT}\s+(\d+) WAL bytes$", out, re.M)
            assert m, out
            return int(m.group(1))
        before = behind()
        with psycopg.connect(pg.dsn, autocommit=True) as c:
            for _ in range(50):
                writer.step(c)
        assert behind() > before + 1000
    finally:
        fs.kill()
        pg.close()
    assert PASSWORD not in (tmp_path / "server.log").read_text(errors="replace")


def test_tls_to_the_database(tmp_path):
    pg = Postgres(tls=True)
    fs = Freshet(tmp_path)
    dsn = pg.dsn + " sslmode=verify-full sslrootcert=" + str(pg.ca_file)
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(TABLE)
            c.execute("INSERT INTO orders (id, amount) SELECT g, g FROM generate_series(1, 300) g")
        source = lambda url, extra="": config(url).replace(  # noqa: E731
            f"      slot: {SLOT}\n", f"      slot: {SLOT}\n{extra}")

        # The CA is not trusted yet: the source is down, saying why, and nothing lands.
        (tmp_path / "freshet.yaml").write_text(source(pg.url + "?sslmode=require"))
        fs.start(wait_ready=True)
        fs.wait(lambda: fs.readyz()[1].get("sources", {}).get("orders", {}).get("status") == "down",
                "the source reported down", 30)
        detail = fs.readyz()[1]["sources"]["orders"]["detail"]
        assert "certificate" in detail.lower(), detail
        fs.stop()
        assert rows(tmp_path, columns=["id"]) == []

        # Without TLS the server turns the connection away (so the run below used TLS).
        (tmp_path / "freshet.yaml").write_text(source(pg.url + "?sslmode=disable"))
        fs.start(wait_ready=True)
        fs.wait(lambda: fs.readyz()[1].get("sources", {}).get("orders", {}).get("status") == "down",
                "the source reported down", 30)
        detail = fs.readyz()[1]["sources"]["orders"]["detail"]
        assert "no encryption" in detail or "pg_hba.conf" in detail, detail
        fs.stop()

        # Trusting the CA (a path relative to the config file): snapshot, then changes.
        (tmp_path / "ca.pem").write_bytes(pg.ca_file.read_bytes())
        (tmp_path / "freshet.yaml").write_text(
            source(pg.url + "?sslmode=require", "      tls_ca_file: ca.pem\n"))
        fs.start(wait_ready=True)
        fs.wait(lambda: len(rows(tmp_path, columns=["id"])) >= 300, "the snapshot over TLS", 60)
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("UPDATE orders SET ver = 1 WHERE id <= 10")
        fs.wait(lambda: len(rows(tmp_path, columns=["id"])) >= 310, "the changes over TLS", 60)
        assert fs.readyz()[0] == 200
        fs.stop()
        ops = sorted(r["change_op"] for r in rows(tmp_path, columns=["change_op"]))
        assert ops.count("snapshot") == 300 and ops.count("update") == 10, ops[-12:]
    finally:
        fs.kill()
        pg.close()
    assert PASSWORD not in (tmp_path / "server.log").read_text(errors="replace")


def test_validate_names_bad_cdc_settings(tmp_path):
    binary = os.environ.get("FRESHET_BIN") or pytest.fail("set FRESHET_BIN to the freshet binary")
    (tmp_path / "freshet.yaml").write_text("""\
streams:
  orders:
    source:
      type: postgres_cdc
      url: "mysql://root:hunter2@db/x"
      tables: ["orders; drop table x"]
      slot: "Bad Slot"
      metadata: { table: nope }
    schema: { fields: [ { name: id, type: int }, { name: change_op, type: string },
                        { name: change_lsn, type: int } ] }
""")
    r = subprocess.run([binary, "--config", str(tmp_path / "freshet.yaml"), "validate"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, r.stdout
    for path in ("streams.orders.source.url", "streams.orders.source.tables[0]",
                 "streams.orders.source.slot", "streams.orders.source.metadata.table"):
        assert path in r.stderr, (path, r.stderr)
    assert "hunter2" not in r.stderr + r.stdout
