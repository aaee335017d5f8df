"""Pulsar -> Delta throughput of Freshet's Pulsar source.

    python bench/pulsar_ingest.py [--records 1000000] [--runs 3] [--no-peer]

Starts the pulsar-lite broker (interop/pulsar_broker.py, same machine), publishes the
ingest bench's records (`freshet bench records`: card transactions, 16 fields, ~360
bytes of JSON, the card number PII-hashed, every field validated) with Apache Pulsar's
Python client (batching on, its default), then for each run starts a fresh `freshet up`
(new lake, new subscription from the earliest message) and times how fast the rows land
(bench/_freshet.py `time_ingest`: first commit to last; the run fails unless the table
then holds exactly --records rows). Each run is followed by the peer a team would
otherwise write (see `peer_run`), on the same topic; reports each run, the medians and
their ratio. The binary is $FRESHET_BIN (default: the workspace's debug build).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pulsar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "interop"))
from pulsar_broker import PulsarBroker  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _freshet import binary, time_ingest  # noqa: E402

TOPIC = "persistent://public/default/cards"


def one_run(root: Path, url: str, fields: str, n: int, k: int) -> dict:
    (root / "pii.key").write_text("bench-key-0123456789abcdef")
    return time_ingest(root, (
        "lake: { path: lake, compaction: { enabled: false } }\n"
        "pii: { key_env: FRESHET_BENCH_NO_ENV, key_file: pii.key }\n"
        "streams:\n  cards:\n"
        f"    source: {{ type: pulsar, url: '{url}', topic: cards, subscription: bench-{k} }}\n"
        f"    schema: {{ fields: {fields} }}\n"
    ), n)


def peer_run(root: Path, url: str, n: int, k: int) -> dict:
    """The stitched-together alternative, measured in the same run: a pulsar-client
    consumer in Python (batch receive) that parses each message, HMAC-hashes the card
    number, appends batches of 100,000 rows with `deltalake.write_deltalake` and then
    acknowledges them. It does less than Freshet (no validation, no dead letters, the
    position not kept with the data, so not exactly once) and is timed the same way:
    first append to last."""
    import hashlib
    import hmac

    import pyarrow as pa
    from deltalake import write_deltalake

    key = b"bench-key-0123456789abcdef"
    client = pulsar.Client(url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    c = client.subscribe(
        TOPIC, f"peer-{k}", initial_position=pulsar.InitialPosition.Earliest,
        receiver_queue_size=20_000,
        batch_receive_policy=pulsar.ConsumerBatchReceivePolicy(10_000, 64 << 20, 100),
    )
    table = str(root / "peer")
    got = 0
    first_t = first_c = None
    deadline = time.perf_counter() + 600
    while got < n and time.perf_counter() < deadline:
        batch, last = [], None
        while len(batch) < 100_000 and got + len(batch) < n:
            ms = c.batch_receive()
            for m in ms:
                r = json.loads(m.data())
                r["card_id"] = hmac.new(key, r["card_id"].encode(), hashlib.sha256).hexdigest()
                batch.append(r)
                last = m
        if batch:
            write_deltalake(table, pa.Table.from_pylist(batch), mode="append")
            c.acknowledge_cumulative(last)
            got += len(batch)
            if first_t is None:
                first_t, first_c = time.perf_counter(), len(batch)
    t = time.perf_counter()
    client.close()
    if got != n:
        raise RuntimeError(f"the peer landed {got} of {n}")
    return {"records_per_s": round((n - first_c) / (t - first_t)) if t > first_t else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-peer", dest="peer", action="store_false",
                    help="skip the Python consumer + write_deltalake peer")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        schema = tmp / "schema.json"
        data = tmp / "cards.ndjson"
        with open(data, "wb") as out:
            subprocess.run([binary(), "bench", "records", "--count", str(a.records), "--schema-out", str(schema)],
                           stdout=out, check=True)
        broker = PulsarBroker(tmp)
        try:
            client = pulsar.Client(broker.url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
            p = client.create_producer(TOPIC, batching_enabled=True, batching_max_messages=1000,
                                       batching_max_publish_delay_ms=10, block_if_queue_full=True,
                                       max_pending_messages=50_000)
            failed = []
            t0 = time.perf_counter()
            with open(data, "rb") as f:
                for line in f:
                    p.send_async(line.rstrip(b"\n"),
                                 lambda res, _m: failed.append(res) if res != pulsar.Result.Ok else None)
            p.flush()
            client.close()
            if failed:
                raise RuntimeError(f"{len(failed)} messages were not published: {failed[:3]}")
            produced_s = time.perf_counter() - t0
            print(f"published {a.records} records in {produced_s:.1f} s ({a.records / produced_s:,.0f}/s)", flush=True)
            runs, peers = [], []
            for k in range(a.runs):
                root = tmp / f"run{k}"
                root.mkdir()
                r = one_run(root, broker.url, schema.read_text(), a.records, k)
                print("freshet", json.dumps(r), flush=True)
                runs.append(r)
                if a.peer:
                    pr = peer_run(root, broker.url, a.records, k)
                    print("python peer", json.dumps(pr), flush=True)
                    peers.append(pr)
        finally:
            broker.stop()
    med = statistics.median(r["records_per_s"] for r in runs)
    out = {"records": a.records, "median_records_per_s": round(med), "runs": runs}
    if peers:
        peer_med = statistics.median(r["records_per_s"] for r in peers)
        out |= {"peer_median_records_per_s": round(peer_med), "ratio": round(med / peer_med, 2), "peer_runs": peers}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
