"""Topic -> score -> topic: throughput and end-to-end latency of a model bound to Kafka.

    python bench/kafka_score.py [--rate 30000] [--seconds 10] [--runs 3]

Trains a logistic regression with `freshet train` (2 fields, as in the interop test),
makes it champion, and starts `freshet up` with the model bound to `events` ->
`answers` (tansu broker on the same machine, reached directly). A Python producer
(confluent-kafka) sends events at --rate for --seconds, each with a unique key; a
consumer on `answers` notes when each answer arrives. Reports answers/s over the
sending window (answers counted until 10 s after the last send) and the latency from
send to answer received (p50, p99), per run and the median of runs. The producer, the
consumer, the broker and Freshet share the machine's 2 cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import multiprocessing
import time
from pathlib import Path

import requests
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "interop"))
from kafka_broker import Broker  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _freshet import binary  # noqa: E402



def cli(root: Path, *args: str) -> str:
    r = subprocess.run([binary(), "--config", str(root / "freshet.yaml"), *args], cwd=root,
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(r.stdout + r.stderr)
    return r.stdout


def read_answers(bootstrap: str, topic: str, k: int, n: int, results) -> None:
    """Note when each answer arrives (monotonic clock, shared across processes), until
    n answers or 10 s without one."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check{k}", "fetch.wait.max.ms": 5})
    c.assign([TopicPartition(topic, p, 0) for p in range(4)])
    got: dict[bytes, float] = {}
    last = time.monotonic()
    while len(got) < n and time.monotonic() - last < 10:
        for m in c.consume(1000, 0.05):
            if not m.error():
                got.setdefault(m.key(), time.monotonic())
                last = time.monotonic()
    c.close()
    results.put(got)


def start_scorer(root: Path, bind: str) -> tuple[subprocess.Popen, str]:
    """Train the model in `root`, bind it with the YAML `bind` entry, start `freshet up`
    and make version 1 champion; gives the process and its URL once it is ready."""
    (root / "freshet.yaml").write_text(f"""\
lake: {{ path: lake, compaction: {{ enabled: false }} }}
registry: {{ path: registry.db }}
streams:
  pay:
    source: {{ type: http }}
    schema: {{ fields: [ {{ name: amount, type: float }}, {{ name: merchant, type: string }}, {{ name: is_fraud, type: bool }} ] }}
models:
  fraud:
    stream: pay
    label: is_fraud
    learner: {{ type: logistic_regression }}
    triggers: {{ initial_rows: 1000000000, concept_drift: none }}
    bind:
      - {bind}
""")
    rows = ["amount,merchant,is_fraud"] + [f"{a}.5,m{a % 7},{str(a > 600).lower()}" for a in range(900)]
    (root / "pay.csv").write_text("\n".join(rows) + "\n")
    cli(root, "ingest", "pay", str(root / "pay.csv"), "-q")
    cli(root, "train", "fraud", "-q")
    addr = root / "addr"
    log = open(root / "server.log", "w")
    proc = subprocess.Popen([binary(), "--config", str(root / "freshet.yaml"), "up", "--listen", "127.0.0.1:0",
                             "--addr-file", str(addr)], cwd=root, stdout=log, stderr=subprocess.STDOUT)
    while not (addr.exists() and addr.read_text().strip()):
        if proc.poll() is not None:
            raise RuntimeError((root / "server.log").read_text())
        time.sleep(0.05)
    url = f"http://{addr.read_text().strip()}"
    r = requests.post(f"{url}/api/2.0/mlflow/registered-models/alias",
                      json={"name": "fraud", "alias": "champion", "version": "1"}, timeout=10)
    r.raise_for_status()
    while requests.get(f"{url}/readyz", timeout=5).status_code != 200:
        time.sleep(0.1)
    time.sleep(1.0)  # the alias is picked up within 250 ms
    return proc, url


VALUES = [json.dumps({"amount": float(i), "merchant": f"m{i % 7}"}).encode() for i in range(900)]


def send_paced(n: int, rate: int, send, poll) -> tuple[dict[bytes, float], float, float]:
    """Call `send(i, key, value)` for n events at `rate` (paced in 5 ms ticks, sleeping,
    not spinning: the cores are shared), `poll(i)` after each; gives each key's send
    time, the start and the sending time."""
    sent: dict[bytes, float] = {}
    start = time.monotonic()
    for i in range(n):
        if i % max(1, rate // 200) == 0:
            due = start + i / rate
            if (ahead := due - time.monotonic()) > 0:
                time.sleep(ahead)
        key = str(i).encode()
        sent[key] = time.monotonic()
        send(i, key, VALUES[i % 900])
        poll(i)
    return sent, start, time.monotonic() - start


def summary(n: int, sent: dict, got: dict, start: float, send_s: float) -> dict:
    lat = sorted((got[key] - sent[key]) * 1000 for key in got if key in sent)
    last = max(got.values()) - start if got else float("nan")
    return {
        "events": n, "answered": len(got), "send_rate": round(n / send_s),
        "answers_per_s": round(len(got) / max(last, send_s)),
        "p50_ms": round(lat[len(lat) // 2], 1) if lat else None,
        "p99_ms": round(lat[int(len(lat) * 0.99)], 1) if lat else None,
    }


def one_run(tmp: Path, bootstrap: str, k: int, rate: int, seconds: float) -> dict:
    root = tmp / f"run{k}"
    root.mkdir()
    events, answers = f"events{k}", f"answers{k}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(t, num_partitions=4, replication_factor=1)
                                  for t in (events, answers)]).values():
        f.result(30)
    proc, _ = start_scorer(root, f"""{{ type: kafka, brokers: "{bootstrap}", input: {events}, output: {answers}, group: g{k},
          partitions: [0, 1, 2, 3], start: earliest }}""")
    try:
        n = int(rate * seconds)
        # The answers are read in another process: one Python process cannot both send
        # and read 30k messages/s.
        results = multiprocessing.Queue()
        reader = multiprocessing.Process(target=read_answers, args=(bootstrap, answers, k, n, results))
        reader.start()
        time.sleep(1.5)
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})

        def send(i: int, key: bytes, value: bytes) -> None:
            while True:
                try:
                    p.produce(events, key=key, value=value)
                    return
                except BufferError:
                    p.poll(0.001)
        sent, start, send_s = send_paced(n, rate, send, lambda i: i % 100 == 0 and p.poll(0))
        p.flush(30)
        got = results.get(timeout=120)
        reader.join()
    finally:
        proc.terminate()
        proc.wait(60)
    return summary(n, sent, got, start, send_s)


def report(rate: int, runs: list[dict]) -> None:
    med = lambda key: statistics.median(r[key] for r in runs if r[key] is not None)  # noqa: E731
    print(json.dumps({"rate": rate, "median_answers_per_s": round(med("answers_per_s")),
                      "median_p50_ms": med("p50_ms"), "median_p99_ms": med("p99_ms"), "runs": runs}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=30_000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        broker = Broker(tmp, relayed=False)
        runs = []
        try:
            for k in range(a.runs):
                r = one_run(tmp, broker.bootstrap, k, a.rate, a.seconds)
                print(json.dumps(r), flush=True)
                runs.append(r)
        finally:
            broker.stop()
    report(a.rate, runs)


if __name__ == "__main__":
    main()
