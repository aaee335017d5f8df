"""Postgres -> Delta change-capture throughput of Freshet's postgres_cdc source.

    python bench/postgres_cdc.py [--changes 1000000] [--tx-rows 100] [--updates 0.2] [--runs 3]

Starts PostgreSQL (interop/pg_server.py, same machine, wal_level = logical) and loads
the ingest bench's records (`freshet bench records`: card transactions, 16 columns, the
card number PII-hashed, every field validated) into a source table. Each run:

1. a fresh table, publication, slot and lake; `freshet up` takes the (empty) snapshot
   and is stopped;
2. the changes are written while Freshet is down: inserts of every record in
   transactions of --tx-rows rows, then updates of a --updates share of them (same
   transaction size), so the slot holds a backlog of --changes row changes;
3. the server's own decoding of that backlog is timed
   (`count(*) FROM pg_logical_slot_peek_binary_changes(...)`: pgoutput in the server,
   nothing sent to a client), as the ceiling any consumer of the slot lives under;
4. `freshet up` starts again and is timed from its first commit to its last
   (`freshet_records_out_total`, sampled every 50 ms) while it drains the backlog; the
   run fails unless the Delta table then holds exactly one event per change.

Reports each run, the medians, and Freshet's rate as a share of the server's decode
rate. The binary is $FRESHET_BIN (default: the workspace's debug build, which uses the
workspace's optimised dev profile).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from deltalake import DeltaTable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "interop"))
from pg_server import Postgres  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _freshet import binary, metric  # noqa: E402

PG_TYPES = {"string": "text", "int": "bigint", "float": "float8", "bool": "boolean",
            "timestamp": "timestamptz", "date": "date"}



def committed(url: str) -> int:
    if (rejected := metric(url, "freshet_records_rejected_total", "cards")) > 0:
        raise RuntimeError(f"{rejected} changes were rejected (see dlq/cards)")
    return metric(url, "freshet_records_out_total", "cards")


class Freshet:
    def __init__(self, root: Path):
        self.root, self.proc, self.url = root, None, ""

    def start(self) -> None:
        addr = self.root / "addr"
        addr.unlink(missing_ok=True)
        log = open(self.root / "server.log", "a")
        self.proc = subprocess.Popen(
            [binary(), "--config", str(self.root / "freshet.yaml"), "up", "--listen", "127.0.0.1:0",
             "--addr-file", str(addr)],
            cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
        )
        while not (addr.exists() and addr.read_text().strip()):
            if self.proc.poll() is not None:
                raise RuntimeError((self.root / "server.log").read_text()[-3000:])
            time.sleep(0.02)
        self.url = f"http://{addr.read_text().strip()}"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(120)


def one_run(pg: Postgres, root: Path, fields: list[dict], n: int, tx_rows: int, updates: float, k: int) -> dict:
    table, slot = f"cards_{k}", f"bench_{k}"
    cols = ", ".join(f["name"] for f in fields)
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        c.execute(f"CREATE TABLE {table} AS SELECT {cols} FROM cards_src WITH NO DATA")
        c.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (transaction_id)")
    (root / "pii.key").write_text("bench-key-0123456789abcdef")
    schema = json.dumps(fields + [{"name": "change_op", "type": "string"}, {"name": "change_lsn", "type": "int"}])
    (root / "freshet.yaml").write_text(
        "lake: { path: lake, compaction: { enabled: false } }\n"
        "pii: { key_env: FRESHET_BENCH_NO_ENV, key_file: pii.key }\n"
        "streams:\n  cards:\n"
        f"    source: {{ type: postgres_cdc, url: '{pg.url}', tables: [public.{table}], slot: {slot} }}\n"
        f"    schema: {{ fields: {schema} }}\n"
    )
    fs = Freshet(root)
    fs.start()
    deadline = time.time() + 120
    while "postgres snapshot committed" not in (root / "server.log").read_text():
        if time.time() > deadline:
            raise RuntimeError("no snapshot:\n" + (root / "server.log").read_text()[-3000:])
        time.sleep(0.05)
    fs.stop()

    n_updates = int(n * updates)
    n_inserts = n - n_updates
    t0 = time.perf_counter()
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        c.execute(f"""DO $$ BEGIN
            FOR i IN 0..{(n_inserts - 1) // tx_rows} LOOP
                INSERT INTO {table} ({cols}) SELECT {cols} FROM cards_src
                 WHERE rn >= i * {tx_rows} AND rn < LEAST((i + 1) * {tx_rows}, {n_inserts});
                COMMIT;
            END LOOP;
            FOR i IN 0..{max(n_updates - 1, 0) // tx_rows} LOOP
                EXIT WHEN {n_updates} = 0;
                UPDATE {table} SET velocity_1h = velocity_1h + 1 WHERE transaction_id IN
                 (SELECT transaction_id FROM cards_src
                   WHERE rn >= i * {tx_rows} AND rn < LEAST((i + 1) * {tx_rows}, {n_updates}));
                COMMIT;
            END LOOP; END $$""")
        write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        decoded = c.execute(
            "SELECT count(*) FILTER (WHERE substr(data, 1, 1) IN ('\\x49'::bytea, '\\x55'::bytea)) "
            "FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, 'proto_version', '1', "
            "'publication_names', %s)", (slot, slot)).fetchone()[0]
        decode_s = time.perf_counter() - t0
    if decoded != n:
        raise RuntimeError(f"the slot holds {decoded} row changes, wrote {n}")

    started = time.perf_counter()
    fs.start()
    try:
        first_t = first_c = None
        deadline = time.perf_counter() + 900
        while True:
            c_ = committed(fs.url)
            t = time.perf_counter()
            if c_ > 0 and first_t is None:
                first_t, first_c = t, c_
            if c_ >= n:
                break
            if t > deadline or fs.proc.poll() is not None:
                raise RuntimeError(f"only {c_} of {n} changes after 900 s:\n"
                                   + (root / "server.log").read_text()[-3000:])
            time.sleep(0.05)
    finally:
        fs.stop()
    events = DeltaTable(str(root / "lake/events/cards")).to_pyarrow_table(columns=["change_op"]).to_pydict()["change_op"]
    if len(events) != n or events.count("update") != n_updates:
        raise RuntimeError(f"the table holds {len(events)} events ({events.count('update')} updates), wrote {n}")
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        c.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        c.execute(f"DROP TABLE {table}")
    if t <= first_t:
        raise RuntimeError(f"all {n} changes landed in the first commit: too few to time; raise --changes")
    rate = (n - first_c) / (t - first_t)
    return {"changes_per_s": round(rate), "seconds_first_to_last": round(t - first_t, 2),
            "seconds_from_start": round(t - started, 2), "first_commit_changes": first_c,
            "server_decode_changes_per_s": round(n / decode_s), "written_changes_per_s": round(n / write_s)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--changes", type=int, default=1_000_000, help="row changes per run")
    ap.add_argument("--tx-rows", type=int, default=100, help="rows per source transaction")
    ap.add_argument("--updates", type=float, default=0.2, help="share of the changes that are updates")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    n_inserts = a.changes - int(a.changes * a.updates)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        schema = tmp / "schema.json"
        data = tmp / "cards.ndjson"
        with open(data, "wb") as out:
            subprocess.run([binary(), "bench", "records", "--count", str(n_inserts), "--schema-out", str(schema)],
                           stdout=out, check=True)
        fields = json.loads(schema.read_text())
        pg = Postgres()
        try:
            ddl = ", ".join(f'{f["name"]} {PG_TYPES[f["type"]]}' for f in fields)
            with psycopg.connect(pg.dsn, autocommit=True) as c:
                c.execute(f"CREATE TABLE cards_src (rn bigint, {ddl}, PRIMARY KEY (transaction_id))")
                c.execute("CREATE UNLOGGED TABLE cards_json (rn bigserial, doc jsonb)")
                with c.cursor().copy("COPY cards_json (doc) FROM STDIN") as cp:
                    with open(data, "rb") as f:
                        for line in f:
                            cp.write_row((line.rstrip(b"\n").decode(),))
                casts = ", ".join(f"(j.doc->>'{f['name']}')::{PG_TYPES[f['type']]}" for f in fields)
                c.execute(f"INSERT INTO cards_src SELECT j.rn - 1, {casts} FROM cards_json j")
                c.execute("CREATE INDEX ON cards_src (rn)")
                c.execute("DROP TABLE cards_json")
                c.execute("VACUUM ANALYZE cards_src")
            print(f"loaded {n_inserts} source rows", flush=True)
            runs = []
            for k in range(a.runs):
                root = tmp / f"run{k}"
                root.mkdir()
                r = one_run(pg, root, fields, a.changes, a.tx_rows, a.updates, k)
                print("freshet", json.dumps(r), flush=True)
                runs.append(r)
        finally:
            pg.close()
    med = statistics.median(r["changes_per_s"] for r in runs)
    dec = statistics.median(r["server_decode_changes_per_s"] for r in runs)
    print(json.dumps({"changes": a.changes, "tx_rows": a.tx_rows, "updates": a.updates,
                      "median_changes_per_s": round(med), "median_server_decode_changes_per_s": round(dec),
                      "share_of_server_decode": round(med / dec, 2), "runs": runs}))


if __name__ == "__main__":
    main()
