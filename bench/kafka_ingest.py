"""Kafka -> Delta throughput of Freshet's Kafka source.

    python bench/kafka_ingest.py [--records 1000000] [--partitions 4] [--runs 3] [--no-peer]

Starts the tansu broker (interop/kafka_broker.py, same machine), produces the ingest
bench's records (`freshet bench records`: card transactions, 16 fields, ~360 bytes of
JSON, the card number PII-hashed, every field validated) with confluent-kafka, then for
each run starts a fresh `freshet up` (new lake, new consumer group) reading the topic
from the start, and times how fast the rows land. Throughput is rows committed
(`freshet_records_out_total`, sampled every 50 ms) between the first commit and the last
divided by that time; the run fails unless the Delta table then holds exactly
--records rows. Each run is followed by the peer a team would otherwise write (see
`peer_run`), on the same topic; reports each run, the medians and their ratio. The binary is $FRESHET_BIN (default:
the workspace's debug build).
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

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "interop"))
from kafka_broker import Broker  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _freshet import binary, time_ingest  # noqa: E402


def one_run(root: Path, bootstrap: str, fields: str, n: int, k: int) -> dict:
    (root / "pii.key").write_text("bench-key-0123456789abcdef")
    return time_ingest(root, (
        "lake: { path: lake, compaction: { enabled: false } }\n"
        "pii: { key_env: FRESHET_BENCH_NO_ENV, key_file: pii.key }\n"
        "streams:\n  cards:\n"
        f"    source: {{ type: kafka, brokers: '{bootstrap}', topics: [cards], group: bench-{k}, options: {{ max.partition.fetch.bytes: '16777216', fetch.max.bytes: '67108864' }} }}\n"
        f"    schema: {{ fields: {fields} }}\n"
    ), n)


def peer_run(root: Path, bootstrap: str, n: int, k: int) -> dict:
    """The stitched-together alternative, measured in the same run: a confluent-kafka
    consumer in Python that parses each record, HMAC-hashes the card number and appends
    batches of 100,000 rows to a Delta table with `deltalake.write_deltalake`. It does
    less than Freshet (no validation, no dead letters, offsets not kept with the data,
    so not exactly once) and is timed the same way: first append to last."""
    import hashlib
    import hmac

    import pyarrow as pa
    from confluent_kafka import Consumer, TopicPartition
    from deltalake import write_deltalake

    key = b"bench-key-0123456789abcdef"
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"peer-{k}", "enable.auto.commit": False})
    md = c.list_topics("cards", timeout=10).topics["cards"]
    c.assign([TopicPartition("cards", p, 0) for p in md.partitions])
    table = str(root / "peer")
    got = 0
    first_t = None
    deadline = time.perf_counter() + 600
    while got < n and time.perf_counter() < deadline:
        batch = []
        while len(batch) < 100_000 and got + len(batch) < n:
            ms = c.consume(10_000, 1.0)
            for m in ms:
                if m.error():
                    continue
                r = json.loads(m.value())
                r["card_id"] = hmac.new(key, r["card_id"].encode(), hashlib.sha256).hexdigest()
                batch.append(r)
        if batch:
            write_deltalake(table, pa.Table.from_pylist(batch), mode="append")
            got += len(batch)
            if first_t is None:
                first_t, first_c = time.perf_counter(), len(batch)
    t = time.perf_counter()
    c.close()
    if got != n:
        raise RuntimeError(f"the peer landed {got} of {n}")
    return {"records_per_s": round((n - first_c) / (t - first_t)) if t > first_t else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--partitions", type=int, default=4)
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
        broker = Broker(tmp, relayed=False)
        try:
            admin = AdminClient({"bootstrap.servers": broker.bootstrap})
            for f in admin.create_topics([NewTopic("cards", num_partitions=a.partitions, replication_factor=1)]).values():
                f.result(30)
            p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20, "batch.size": 1 << 20,
                          "queue.buffering.max.messages": 500_000})
            t0 = time.perf_counter()
            with open(data, "rb") as f:
                for line in f:
                    while True:
                        try:
                            p.produce("cards", value=line.rstrip(b"\n"))
                            break
                        except BufferError:
                            p.poll(0.05)
            assert p.flush(120) == 0
            produced_s = time.perf_counter() - t0
            print(f"produced {a.records} records in {produced_s:.1f} s ({a.records / produced_s:,.0f}/s)", flush=True)
            runs, peers = [], []
            for k in range(a.runs):
                root = tmp / f"run{k}"
                root.mkdir()
                r = one_run(root, broker.bootstrap, schema.read_text(), a.records, k)
                print("freshet", json.dumps(r), flush=True)
                runs.append(r)
                if a.peer:
                    pr = peer_run(root, broker.bootstrap, a.records, k)
                    print("python peer", json.dumps(pr), flush=True)
                    peers.append(pr)
        finally:
            broker.stop()
    med = statistics.median(r["records_per_s"] for r in runs)
    out = {"records": a.records, "partitions": a.partitions, "median_records_per_s": round(med), "runs": runs}
    if peers:
        peer_med = statistics.median(r["records_per_s"] for r in peers)
        out |= {"peer_median_records_per_s": round(peer_med), "ratio": round(med / peer_med, 2), "peer_runs": peers}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
