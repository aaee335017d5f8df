"""HTTP ingest into a lake in S3 against the same ingest into a lake on the local disk.

    python bench/ingest_s3.py [--seconds 20] [--clients 32] [--batch 1000] [--runs 3]
                              [--store seaweedfs|moto]

Starts an S3-compatible store on 127.0.0.1 (SeaweedFS's S3 gateway by default, or moto;
see interop/s3_server.py), then alternates `freshet bench ingest` runs with the lake on
the local disk and under a fresh `s3://` prefix, --runs of each: the same card
transactions, clients, batch and commit policy (`max_latency_ms` 20), the server
acknowledging each request only after the Delta commit holding it, and the rows counted
in the table afterwards. The store, the server and the clients share the machine.
Reports each run, the medians, and S3's throughput as a share of the local disk's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "interop"))
from s3_server import REGION, S3Server, SeaweedServer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _freshet import binary  # noqa: E402

BUCKET = "freshet-bench"


def run(args, work: Path, label: str, n: int, env: dict, lake: str | None) -> dict:
    out = work / f"{label}-{n}.json"
    cmd = [binary(), "bench", "ingest", "--seconds", str(args.seconds), "--clients", str(args.clients),
           "--batch", str(args.batch), "--max-latency-ms", "20", "--json", str(out)]
    if lake:
        cmd += ["--lake", lake]
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    report = json.loads(out.read_text())
    print(f"{label:5} run {n}: {report['records_per_sec']:>9,.0f} records/s, ack p50 "
          f"{report['ack_p50_ms']:.1f} ms, p99 {report['ack_p99_ms']:.1f} ms, "
          f"{report['commits']} commits, peak RSS {report['peak_rss_mb']:.0f} MB", flush=True)
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--store", choices=["seaweedfs", "moto"], default="seaweedfs")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = SeaweedServer(work) if args.store == "seaweedfs" else S3Server(work / "moto.log")
        try:
            store.client().create_bucket(Bucket=BUCKET)
            env = {**os.environ, **store.env(), "AWS_ENDPOINT_URL": store.endpoint,
                   "AWS_ALLOW_HTTP": "true", "AWS_DEFAULT_REGION": REGION}
            results: dict[str, list[dict]] = {"local": [], "s3": []}
            for n in range(1, args.runs + 1):
                results["local"].append(run(args, work, "local", n, env, None))
                results["s3"].append(run(args, work, "s3", n, env, f"s3://{BUCKET}/run-{n}"))
        finally:
            store.stop()

    def med(label: str, key: str) -> float:
        return statistics.median(r[key] for r in results[label])

    print(f"\nmedian of {args.runs} ({args.store}, {args.clients} clients x {args.batch} records):")
    for label in ("local", "s3"):
        print(f"  {label:5}: {med(label, 'records_per_sec'):>9,.0f} records/s, "
              f"ack p99 {med(label, 'ack_p99_ms'):.1f} ms")
    share = med("s3", "records_per_sec") / med("local", "records_per_sec")
    print(f"  S3 throughput is {share:.0%} of the local disk's")


if __name__ == "__main__":
    main()
