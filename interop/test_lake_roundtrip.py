"""Freshet's Delta tables, read back by the reference Python readers.

Runs the real `freshet` binary (path in the FRESHET_BIN environment variable; this
test builds nothing) against a temporary configuration with three streams:

* ``web``: an HTTP stream with one field of each type (string, int, float, bool,
  timestamp, date), fed N records in two keyed requests plus one invalid record;
* ``visits``: a file stream, fed a CSV file of M lines by ``freshet ingest`` before the
  server starts (the server's own file source must then find nothing left to do);
* ``cards``: the cards generator with ``limit: 5000`` and no rate.

After a clean stop, the ``deltalake`` package and polars must see exactly the expected
rows, the expected Arrow / polars types, and time travel to earlier versions.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
import requests
from deltalake import DeltaTable

N_HTTP = 1000  # records POSTed to `web`, in two requests of N_HTTP / 2
M_CSV = 2500  # lines of the CSV file ingested into `visits`
N_CARDS = 5000  # the generator's limit

PII_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

TYPED_FIELDS = """\
      fields:
        - { name: name, type: string, required: true }
        - { name: qty, type: int, required: true, min: 0 }
        - { name: price, type: float }
        - { name: active, type: bool }
        - { name: seen_at, type: timestamp }
        - { name: day, type: date }
"""

CONFIG = f"""\
lake:
  path: lake
  compaction: {{ enabled: false }}
pii:
  key_env: FRESHET_INTEROP_UNSET_KEY
  key_file: pii.key
streams:
  web:
    source: {{ type: http }}
    schema:
{TYPED_FIELDS}    commit: {{ max_latency_ms: 20 }}
  visits:
    source: {{ type: file, path: visits.csv }}
    schema:
{TYPED_FIELDS}  cards:
    source: {{ type: generator, kind: cards, seed: 7, limit: {N_CARDS} }}
"""

SYSTEM_COLUMNS = ["_event_id", "_ingested_at", "_source", "_position", "_ingest_date"]
TS_UTC = pa.timestamp("us", tz="UTC")


def expected_web(i: int) -> dict:
    return {
        "name": f"w{i:05}",
        "qty": i,
        "price": i + 0.25,
        "active": i % 2 == 0,
        "seen_at": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
        + dt.timedelta(seconds=i),
        "day": dt.date(2026, 1, 1) + dt.timedelta(days=i % 365),
    }


def web_json(i: int) -> dict:
    e = expected_web(i)
    return {
        **e,
        "seen_at": e["seen_at"].isoformat().replace("+00:00", "Z"),
        "day": e["day"].isoformat(),
    }


def freshet_bin() -> str:
    path = os.environ.get("FRESHET_BIN")
    if not path:
        pytest.fail("set FRESHET_BIN to the path of a built `freshet` binary")
    if not os.access(path, os.X_OK):
        pytest.fail(f"FRESHET_BIN={path} is not an executable file")
    return path


def is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def run(cmd: list[str], cwd: Path, log: Path, env: dict, timeout: float = 120) -> str:
    """Run a command to completion; returns its output (also appended to the log)."""
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, text=True
    )
    with open(log, "a") as out:
        out.write(proc.stdout)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout}"
    return proc.stdout


def wait_for(what: str, cond, timeout: float, log: Path):
    deadline = time.monotonic() + timeout
    while True:
        try:
            v = cond()
            if v:
                return v
        except Exception:  # noqa: BLE001 - tables may not exist yet
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; log:\n{log.read_text()[-4000:]}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> dict:
    """Run everything once; hand the tests the lake and what was acknowledged."""
    binary = freshet_bin()
    root = tmp_path_factory.mktemp("freshet-interop")
    (root / "pii.key").write_text(PII_KEY)
    config = root / "freshet.yaml"
    config.write_text(CONFIG)
    log = root / "freshet.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRESHET_")}

    # The CSV file, through the CLI (before the server: one writer per table at a time).
    csv = root / "visits.csv"
    with open(csv, "w") as f:
        f.write("name,qty,price,active,seen_at,day\n")
        for i in range(M_CSV):
            e = web_json(i)
            f.write(f"v{i:05},{i},{e['price']},{str(e['active']).lower()},{e['seen_at']},{e['day']}\n")
    run([binary, "--config", str(config), "validate"], root, log, env)
    ingest = [binary, "--config", str(config), "ingest", "visits", str(csv), "--quiet"]
    first = run(ingest, root, log, env)
    assert f"{M_CSV} accepted" in first and "resumed" not in first, first

    addr_file = root / "addr"
    with open(log, "ab") as out:
        server = subprocess.Popen(
            [binary, "--config", str(config), "up", "--listen", "127.0.0.1:0", "--addr-file", str(addr_file)],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        addr = wait_for("the address file", lambda: addr_file.exists() and addr_file.read_text().strip(), 60, log)
        base = f"http://{addr}"
        wait_for("/readyz", lambda: requests.get(f"{base}/readyz", timeout=2).status_code == 200, 60, log)
        url = f"{base}/v1/streams/web/events"
        versions = []
        half = N_HTTP // 2
        for part in range(2):
            body = [web_json(i) for i in range(part * half, (part + 1) * half)]
            r = requests.post(url, json=body, headers={"Idempotency-Key": f"interop-{part}"}, timeout=60)
            assert r.status_code == 200, r.text
            out = r.json()
            assert out["accepted"] == half and out["rejected"] == 0, out
            versions.append(out["version"])
        # A replay writes nothing.
        r = requests.post(
            url, json=[web_json(i) for i in range(half)], headers={"Idempotency-Key": "interop-0"}, timeout=60
        )
        assert r.status_code == 200 and r.json()["replayed"] is True, r.text
        # One invalid record: qty is not an int. It lands in dlq/web.
        bad = {**web_json(99_999), "qty": "many"}
        r = requests.post(url, data=json.dumps(bad) + "\n", headers={"Content-Type": "application/x-ndjson"}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["rejected"] == 1 and r.json()["accepted"] == 0, r.text

        cards = root / "lake" / "events" / "cards"
        wait_for(
            f"{N_CARDS} generated rows",
            lambda: DeltaTable(str(cards)).to_pyarrow_table(columns=["transaction_id"]).num_rows >= N_CARDS,
            120,
            log,
        )
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert code == 0, f"freshet up exited with {code}:\n{log.read_text()[-4000:]}"
    # Ingesting the same file again resumes at its end and adds nothing.
    again = run(ingest, root, log, env)
    assert f"resumed at byte {csv.stat().st_size}" in again and " 0 accepted" in again, again
    return {"lake": root / "lake", "versions": versions, "log": log}


def table_path(lake: dict, name: str) -> str:
    return str(lake["lake"] / name)


def check_typed(t: pa.Table) -> None:
    s = t.schema
    assert is_string(s.field("name").type), s
    assert s.field("qty").type == pa.int64(), s
    assert s.field("price").type == pa.float64(), s
    assert s.field("active").type == pa.bool_(), s
    assert s.field("seen_at").type == TS_UTC, s
    assert s.field("day").type == pa.date32(), s


def check_system(t: pa.Table) -> None:
    s = t.schema
    for c in SYSTEM_COLUMNS:
        assert c in s.names, s
    assert is_string(s.field("_event_id").type)
    assert s.field("_ingested_at").type == TS_UTC
    assert is_string(s.field("_source").type)
    assert s.field("_position").type == pa.int64()
    assert s.field("_ingest_date").type == pa.date32()
    assert t.column("_ingest_date").null_count == 0
    assert len(set(t.column("_event_id").to_pylist())) == t.num_rows, "event ids are unique"


def test_http_stream_with_deltalake(lake):
    t = DeltaTable(table_path(lake, "events/web")).to_pyarrow_table()
    assert t.num_rows == N_HTTP
    check_typed(t)
    check_system(t)
    rows = sorted(t.select(["name", "qty", "price", "active", "seen_at", "day"]).to_pylist(), key=lambda r: r["qty"])
    for i in (0, 1, 499, 500, N_HTTP - 1):
        assert rows[i] == expected_web(i), rows[i]
    assert set(t.column("_source").to_pylist()) == {"http"}


def test_http_stream_with_polars(lake):
    df = pl.read_delta(table_path(lake, "events/web"))
    assert df.height == N_HTTP
    assert df.schema["name"] == pl.String
    assert df.schema["qty"] == pl.Int64
    assert df.schema["price"] == pl.Float64
    assert df.schema["active"] == pl.Boolean
    assert df.schema["seen_at"] == pl.Datetime("us", "UTC")
    assert df.schema["day"] == pl.Date
    assert df.schema["_ingest_date"] == pl.Date
    assert df["name"].n_unique() == N_HTTP
    row = df.filter(pl.col("qty") == 7).to_dicts()[0]
    assert {k: row[k] for k in expected_web(7)} == expected_web(7)


def test_time_travel(lake):
    path = table_path(lake, "events/web")
    v1, v2 = lake["versions"]
    assert 0 < v1 < v2
    latest = DeltaTable(path)
    assert latest.version() >= v2
    half = N_HTTP // 2
    assert DeltaTable(path, version=0).to_pyarrow_table().num_rows == 0
    assert DeltaTable(path, version=v1).to_pyarrow_table().num_rows == half
    assert DeltaTable(path, version=v2).to_pyarrow_table().num_rows == N_HTTP
    old = DeltaTable(path, version=v1).to_pyarrow_table()
    assert sorted(old.column("qty").to_pylist()) == list(range(half))
    assert pl.read_delta(path, version=v1).height == half
    dt_ = DeltaTable(path)
    dt_.load_as_version(v1)
    assert dt_.to_pyarrow_table().num_rows == half
    assert len(latest.history()) == latest.version() + 1


def test_dead_letter_table(lake):
    t = DeltaTable(table_path(lake, "dlq/web")).to_pyarrow_table()
    assert t.num_rows == 1
    row = t.to_pylist()[0]
    assert row["stage"] == "validate"
    assert row["field"] == "qty"
    assert "int" in row["reason"]
    assert json.loads(row["payload"])["name"] == "w99999"
    check_system(t)
    assert pl.read_delta(table_path(lake, "dlq/web")).height == 1


def test_file_stream(lake):
    path = table_path(lake, "events/visits")
    t = DeltaTable(path).to_pyarrow_table()
    # The CLI wrote every line once; the server's file source then resumed at the end.
    assert t.num_rows == M_CSV
    check_typed(t)
    check_system(t)
    assert len(set(t.column("name").to_pylist())) == M_CSV
    row = sorted(t.select(["qty", "price", "active", "seen_at", "day"]).to_pylist(), key=lambda r: r["qty"])[42]
    want = expected_web(42)
    assert row == {k: want[k] for k in row}
    assert pl.read_delta(path).height == M_CSV
    assert pl.read_delta(path).schema["seen_at"] == pl.Datetime("us", "UTC")


def test_generator_stream(lake):
    path = table_path(lake, "events/cards")
    t = DeltaTable(path).to_pyarrow_table()
    assert t.num_rows == N_CARDS
    s = t.schema
    assert s.field("event_time").type == TS_UTC
    assert s.field("amount").type == pa.float64()
    assert s.field("hour").type == pa.int64()
    assert s.field("card_present").type == pa.bool_()
    assert is_string(s.field("card_id").type)
    assert all(len(c) == 64 for c in t.column("card_id").to_pylist()), "card ids are hashed"
    check_system(t)
    assert sorted(t.column("_position").to_pylist()) == list(range(N_CARDS))
    df = pl.read_delta(path)
    assert df.height == N_CARDS
    assert df.schema["event_time"] == pl.Datetime("us", "UTC")
    assert df.schema["is_fraud"] == pl.Int64
    assert df["transaction_id"].n_unique() == N_CARDS
