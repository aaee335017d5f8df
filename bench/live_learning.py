#!/usr/bin/env python3
"""Live learning throughput: labels per second a live champion learns, against River.

Starts `freshet up` with one HTTP stream shaped like Elec2 and one model served live
(`serving: live`, adaptive random forest with 10 trees, River's defaults), lands the
first 1,000 rows so the loop trains v1, scores the next `--rows` rows (requests of
1,000 rows), then feeds their labels back in calls of `--batch` labels with
`?wait=learned` and times it: from the first feedback call until the last one answered,
every label learnt by the live learner and published to the state that answers. The
timed path is the whole product path — HTTP, parsing, the grouped commit to
`labels/<model>`, matching each label to its answer, grading both the live state and
the snapshot, learning, journalling the row for replay, and publishing.

River's ARF(10) (0.26.1, seed 42) learns the same rows after the same first 1,000, in
process, `learn_one` in a loop, and is timed the same way.

Usage: bench/live_learning.py [--freshet PATH] [--elec2 PATH] [--rows 20000] [--batch 2000]
Needs River 0.26.1 (the bench virtualenv: ~/.cache/freshet-bench-venv).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from river import forest

ROOT = Path(__file__).resolve().parent.parent
FEATURES = ["date", "day", "period", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer"]

CONFIG = """server:
  listen: 127.0.0.1:0
lake:
  path: data/lake
  compaction: {{ enabled: false }}
registry:
  path: data/registry.db
  artifacts: data/artifacts
pii:
  key_file: pii.key
streams:
  elec2:
    source: {{ type: http }}
    schema:
      fields:
{fields}        - {{ name: class, type: string }}
    commit: {{ max_latency_ms: 50 }}
models:
  elec:
    stream: elec2
    label: class
    learner: {{ type: adaptive_random_forest }}
    serving: live
    triggers: {{ initial_rows: 1000, rows: 0, concept_drift: none }}
"""


def call(url: str, body=None, timeout=600):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, json.loads(r.read() or b"null")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--freshet", default=os.environ.get(
        "FRESHET_BIN", str(Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/freshet-target")) / "debug/freshet")))
    ap.add_argument("--elec2", type=Path, default=ROOT.parent / "shared/data/elec2.csv")
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=2_000)
    args = ap.parse_args()

    with open(args.elec2, newline="") as f:
        rows = list(csv.DictReader(f))
    first, timed = rows[:1000], rows[1000:1000 + args.rows]

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        fields = "".join(f"        - {{ name: {n}, type: float }}\n" for n in FEATURES)
        (d / "freshet.yaml").write_text(CONFIG.format(fields=fields))
        (d / "pii.key").write_text("bench-key-0123456789abcdef")
        addr_file = d / "addr"
        server = subprocess.Popen([args.freshet, "--config", str(d / "freshet.yaml"), "up",
                                   "--addr-file", str(addr_file)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                if addr_file.exists() and addr_file.read_text().strip():
                    break
                time.sleep(0.1)
            base = "http://" + addr_file.read_text().strip()
            events = "\n".join(json.dumps({**{k: float(r[k]) for k in FEATURES}, "class": r["class"]})
                               for r in first)
            req = urllib.request.Request(f"{base}/v1/streams/elec2/events", data=events.encode(),
                                         headers={"content-type": "application/x-ndjson"})
            urllib.request.urlopen(req, timeout=60).read()
            for _ in range(1200):
                try:
                    if urllib.request.urlopen(f"{base}/v2/models/elec/ready", timeout=5).status == 200:
                        break
                except urllib.error.HTTPError:
                    pass
                time.sleep(0.1)
            else:
                raise SystemExit("v1 was never served")
            for k in range(0, len(timed), 1000):
                recs = [{n: float(r[n]) for n in FEATURES} for r in timed[k:k + 1000]]
                call(f"{base}/serving-endpoints/elec/invocations",
                     {"client_request_id": f"b{k}", "dataframe_records": recs})
            started = time.perf_counter()
            for k in range(0, len(timed), args.batch):
                labels = [{"client_request_id": f"b{(i // 1000) * 1000}", "row": i % 1000,
                           "label": timed[i]["class"]} for i in range(k, min(k + args.batch, len(timed)))]
                _, out = call(f"{base}/v1/models/elec/feedback?wait=learned", labels)
                if out.get("live_learnt") is not True:
                    raise SystemExit(f"labels not learnt: {out}")
            freshet_secs = time.perf_counter() - started
            _, status = call(f"{base}/v1/models/elec/status")
            learned = status["live"]["learned"]
        finally:
            server.terminate()
            server.wait(timeout=30)

    model = forest.ARFClassifier(n_models=10, seed=42)
    for r in first:
        model.learn_one({k: float(r[k]) for k in FEATURES}, r["class"])
    xs = [{k: float(r[k]) for k in FEATURES} for r in timed]
    started = time.perf_counter()
    for x, r in zip(xs, timed):
        model.learn_one(x, r["class"])
    river_secs = time.perf_counter() - started

    f_rate, r_rate = len(timed) / freshet_secs, len(timed) / river_secs
    print(f"Live learning, ARF(10) on Elec2 rows 1000..{1000 + len(timed)} ({learned} learnt by the live champion)")
    print(f"  Freshet live champion, over HTTP in calls of {args.batch} labels: {f_rate:>9,.0f} labels/s ({freshet_secs:.2f} s)")
    print(f"  River ARFClassifier.learn_one, in process:            {r_rate:>9,.0f} labels/s ({river_secs:.2f} s)")
    print(f"  ratio: {f_rate / r_rate:.1f}x")
    print(json.dumps({"freshet_labels_per_s": f_rate, "river_labels_per_s": r_rate,
                      "ratio": f_rate / r_rate, "rows": len(timed), "learned": learned}))


if __name__ == "__main__":
    main()
