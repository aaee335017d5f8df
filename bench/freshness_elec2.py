#!/usr/bin/env python3
"""Freshness on Elec2: how accurate is what Freshet serves, over the whole stream?

Runs `freshet demo --data elec2.csv --label class` with an online adaptive random forest
(10 trees) that keeps learning the stream and is snapshotted into versions every
`--retrain-rows` rows (and on drift); each snapshot passes the gates and a quick
shadow + canary rollout before it answers. The simulated client asks for a prediction
of every event and sends its true label `--label-delay` events later (the labelled
event lands in the stream's table at that moment, so nothing learns a label before it
is due). The demo's `summary.json` gives the prequential accuracy of whatever was
answering, and of v1 — the static model trained once and never replaced.

Beside it, in the same run and on the same stream, this script computes:
- River's ARF(10) (River 0.26.1 defaults, seed 42), test-then-train on every row with
  the label available `--label-delay` events later, and with labels at once (the
  usual prequential figure, 0.887);
- the no-change baseline (predict the most recent label known), with the same delay
  and with the previous event's label (0.853).

With `--serving live` the champion is a live learner (docs/serving.md): it starts
from the newest version and learns each label the moment it is fed back, and the
client scores one event at a time, so a label `d` events late is learnt before event
i + d is scored (d = 0: the previous event's label). `--label-delay` may list several
delays (`0,50,300`); each is one run, compared with River at the same delay.

Usage: bench/freshness_elec2.py [--freshet PATH] [--elec2 PATH] [--rate 300]
       [--label-delay 50] [--retrain-rows 500] [--serving snapshot|live]
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
from pathlib import Path

from river import forest

ROOT = Path(__file__).resolve().parent.parent
FEATURES = ["date", "day", "period", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer"]


def load(path: Path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    xs = [{k: float(r[k]) for k in FEATURES} for r in rows]
    ys = [r["class"] for r in rows]
    return xs, ys


def no_change(ys, delay: int, start: int, end: int) -> float:
    """Predict the label of event i - delay (the newest one known at event i), scored
    over events `start`..`end`."""
    first = max(start, delay)
    hits = sum(ys[i - delay] == ys[i] for i in range(first, end))
    return hits / (end - first)


def river_arf(xs, ys, delay: int, start: int, end: int) -> tuple[float, float]:
    """Test-then-train where the label of event j is learnt just before event j + delay
    is predicted, scored over events `start`..`end` (it learns from event 0); returns
    (accuracy, seconds)."""
    model = forest.ARFClassifier(n_models=10, seed=42)
    right = seen = 0
    started = time.perf_counter()
    for i, x in enumerate(xs[:end]):
        j = i - delay
        if j >= 0:
            model.learn_one(xs[j], ys[j])
        if i == 0 or i < start:
            continue
        p = model.predict_one(x)
        if p is not None:
            seen += 1
            right += p == ys[i]
    return right / max(seen, 1), time.perf_counter() - started


def run_freshet(args, out_dir: Path, delay: int) -> dict:
    cmd = [
        args.freshet, "demo",
        "--data", str(args.elec2), "--label", "class",
        "--dir", str(out_dir),
        "--learner", args.learner,
        "--job", "online",
        "--retrain-rows", str(args.retrain_rows),
        "--initial-rows", str(args.initial_rows),
        "--rows-after-drift", "100",
        "--rollout-requests", str(args.rollout_requests),
        "--rollout-secs", "0",
        "--rate", str(args.rate),
        "--label-delay", str(delay),
        "--max-seconds", str(args.max_seconds),
        "--serving", args.serving,
    ]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"freshet demo failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    summary = json.loads((out_dir / "summary.json").read_text())
    summary["seconds"] = time.perf_counter() - started
    summary["log"] = done.stdout
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--freshet", default=os.environ.get(
        "FRESHET_BIN", str(Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/freshet-target")) / "debug/freshet")))
    ap.add_argument("--elec2", type=Path, default=ROOT.parent / "shared/data/elec2.csv")
    ap.add_argument("--rate", type=int, default=300, help="events per second replayed")
    ap.add_argument("--label-delay", default="50",
                    help="events between a prediction and its label; a comma list runs each")
    ap.add_argument("--serving", choices=["snapshot", "live"], default="snapshot")
    ap.add_argument("--learner", default="adaptive_random_forest",
                    help="the Freshet learner (a type, or an inline spec); River's side stays ARF(10)")
    ap.add_argument("--retrain-rows", type=int, default=500, help="snapshot every this many new rows")
    ap.add_argument("--initial-rows", type=int, default=500)
    ap.add_argument("--rollout-requests", type=int, default=50)
    ap.add_argument("--max-seconds", type=int, default=1800)
    ap.add_argument("--keep", type=Path, help="keep the demo's folder here")
    args = ap.parse_args()

    xs, ys = load(args.elec2)
    for d in [int(x) for x in str(args.label_delay).split(",")]:
        one_delay(args, xs, ys, d)


def one_delay(args, xs, ys, d: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = (args.keep / f"delay-{d}") if args.keep else Path(tmp) / "demo"
        fr = run_freshet(args, out_dir, d)
    served = fr["served"]["whole"]
    static = next(v for v in fr["versions"] if v["version"] == 1)["whole"]
    first = fr["first_served"]
    # The run may end before the stream does (its time budget): compare on the events
    # it saw.
    end = fr["events"]
    # Every figure over the same events: from the first one Freshet answered. River's
    # delay counts like the demo's: at delay d, event i has learnt labels up to i - d
    # (the demo's 0 is River's 1, the previous event's label).
    arf_d, arf_d_secs = river_arf(xs, ys, max(d, 1), first, end)
    arf_1, arf_1_secs = river_arf(xs, ys, 1, first, end)
    nc_d, nc_1 = no_change(ys, max(d, 1), first, end), no_change(ys, 1, first, end)

    name = "ARF(10)" if args.learner == "adaptive_random_forest" else args.learner
    how = (f"live {name} learning every label, snapshots as its safety net"
           if args.serving == "live" else f"online {name} snapshots + rollouts")
    print(f"Elec2 freshness — {len(ys)} events replayed at up to {args.rate}/s, labels {d} events late, serving {args.serving}")
    print(f"(every figure over events {first}..{end} of {len(ys)}: Freshet answers from event {first}, when v1 "
          f"is ready; {len(fr['versions'])} versions; the run took {fr['seconds']:.0f} s)\n")
    print(f"  {'':<66} {'accuracy':>9}")
    print(f"  {f'Freshet, served champion ({how})':<66} {served['accuracy']:>9.4f}")
    print(f"  {'Freshet, static v1 (trained once, never replaced)':<66} {static['accuracy']:>9.4f}")
    print(f"  {f'River ARF(10), learns every label {d} events late':<66} {arf_d:>9.4f}")
    print(f"  {f'no-change baseline, label {d} events late':<66} {nc_d:>9.4f}")
    print(f"  {'River ARF(10), learns every label at once (usual prequential)':<66} {arf_1:>9.4f}")
    print(f"  {'no-change baseline, previous label':<66} {nc_1:>9.4f}")
    print(f"\n  River ARF timings: {arf_d_secs:.0f} s and {arf_1_secs:.0f} s for the stream")
    print(json.dumps({
        "served": served["accuracy"], "static": static["accuracy"],
        "river_arf_delayed": arf_d, "no_change_delayed": nc_d,
        "river_arf": arf_1, "no_change": nc_1, "serving": args.serving,
        "label_delay": d, "rate": args.rate, "versions": len(fr["versions"]),
        "first": first, "end": end,
        "seconds": fr["seconds"],
    }))


if __name__ == "__main__":
    main()
