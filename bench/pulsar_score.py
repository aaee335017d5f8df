"""Topic -> score -> topic over Pulsar: throughput and end-to-end latency of a model bound
to Pulsar topics.

    python bench/pulsar_score.py [--rate 30000] [--seconds 10] [--runs 3]

As bench/kafka_score.py, with pulsar-lite (same machine) as the broker: a logistic
regression trained by `freshet train` is champion and bound to `events<k>` ->
`answers<k>`; Apache Pulsar's Python client publishes events at --rate for --seconds
(batching on, 1 ms publish delay; --producers processes share the rate, as one
Python producer tops out near 20k/s), each with a unique key; a consumer in another process
notes when each answer arrives. Reports answers/s over the sending window (answers
counted until 10 s after the last one) and send -> answer latency (p50, p99), per run
and the median of runs. The producer, the consumer, the broker and Freshet share the
machine's 2 cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import pulsar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "interop"))
from pulsar_broker import PulsarBroker  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kafka_score import report, send_paced, start_scorer, summary  # noqa: E402


def client(url: str) -> pulsar.Client:
    return pulsar.Client(url, operation_timeout_seconds=30,
                         logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))


def read_answers(url: str, topic: str, n: int, results) -> None:
    """Note when each answer arrives (monotonic clock, shared across processes), until
    n answers or 10 s without one."""
    c = client(url)
    consumer = c.subscribe(topic, "check", initial_position=pulsar.InitialPosition.Earliest,
                           receiver_queue_size=5000)
    got: dict[bytes, float] = {}
    last = time.monotonic()
    while len(got) < n and time.monotonic() - last < 10:
        try:
            m = consumer.receive(timeout_millis=50)
        except pulsar.Timeout:
            continue
        got.setdefault(m.partition_key().encode(), time.monotonic())
        last = time.monotonic()
        if len(got) % 1000 == 0:
            consumer.acknowledge_cumulative(m)
    c.close()
    results.put(got)


def one_run(tmp: Path, url: str, k: int, rate: int, seconds: float, producers: int) -> dict:
    root = tmp / f"run{k}"
    root.mkdir()
    events = f"persistent://public/default/events{k}"
    answers = f"persistent://public/default/answers{k}"
    proc, _ = start_scorer(root, f"""{{ type: pulsar, url: "{url}", input: events{k}, output: answers{k},
          subscription: g{k}, start: earliest }}""")
    try:
        n = int(rate * seconds)
        results = multiprocessing.Queue()
        reader = multiprocessing.Process(target=read_answers, args=(url, answers, n, results))
        reader.start()
        time.sleep(1.5)
        # One Python producer publishes ~20k/s at most: several share the rate, each
        # its own keys (`<producer>-<i>`).
        go = time.monotonic() + 0.5
        sends = multiprocessing.Queue()
        senders = [multiprocessing.Process(target=publish, args=(url, events, j, n // producers,
                                                                 rate / producers, go, sends))
                   for j in range(producers)]
        for s in senders:
            s.start()
        sent: dict[bytes, float] = {}
        starts, ends = [], []
        for _ in senders:
            part, start, send_s = sends.get(timeout=300)
            sent.update(part)
            starts.append(start)
            ends.append(start + send_s)
        for s in senders:
            s.join()
        got = results.get(timeout=120)
        reader.join()
    finally:
        proc.terminate()
        proc.wait(60)
    return summary(len(sent), sent, got, min(starts), max(ends) - min(starts))


def publish(url: str, topic: str, j: int, n: int, rate: float, go: float, out) -> None:
    c = client(url)
    p = c.create_producer(topic, batching_enabled=True, batching_max_publish_delay_ms=1,
                          block_if_queue_full=True, max_pending_messages=20_000)
    failed = []

    def done(res, _mid):
        if res != pulsar.Result.Ok:
            failed.append(res)

    time.sleep(max(0.0, go - time.monotonic()))
    sent, start, send_s = send_paced(
        n, int(rate), lambda i, key, value: p.send_async(value, done, partition_key=f"{j}-{key.decode()}"),
        lambda i: None)
    p.flush()
    c.close()
    if failed:
        raise RuntimeError(f"{len(failed)} events not published: {failed[0]}")
    out.put(({f"{j}-{k.decode()}".encode(): t for k, t in sent.items()}, start, send_s))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=30_000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--producers", type=int, default=2, help="publishing processes sharing --rate")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        broker = PulsarBroker(tmp)
        runs = []
        try:
            for k in range(a.runs):
                r = one_run(tmp, broker.url, k, a.rate, a.seconds, a.producers)
                print(json.dumps(r), flush=True)
                runs.append(r)
        finally:
            broker.stop()
    report(a.rate, runs)


if __name__ == "__main__":
    main()
