#!/usr/bin/env python3
"""Online learners: Freshet against River, side by side in one run.

Runs the same prequential (test-then-train) evaluation on Elec2 (../shared/data/elec2.csv,
label `class`) and on River's bundled Phishing dataset, for logistic regression, Gaussian
naive Bayes, Hoeffding tree, Hoeffding adaptive tree, the adaptive random forest
(10 trees) and leveraging bagging (10 Hoeffding trees), with River's default settings
and no preprocessing on either side. Freshet's model selector (ARF(10), Hoeffding
adaptive tree, Gaussian NB and logistic regression learning side by side, the one with
the lowest recent error answering) has no River counterpart: River 0.26.1 has no
greedy selector for classifiers (only GreedyRegressor), so its row compares it with
River's best single member on that stream, chosen after the fact.
Freshet's side is `freshet bench learners`; River's is this script's loop, timed the
same way (the stream is in memory before timing starts on both sides). Randomised
learners use seed 42 on both sides; as the two draw different random numbers, the
script also runs ARF with seeds 0..19 on Phishing (a short stream, where one seed's
accuracy swings by a point or more) and prints the mean on both sides.

Usage: bench/learners_vs_river.py [--freshet PATH] [--elec2 PATH]
Needs River 0.26.1 (the bench virtualenv: ~/.cache/freshet-bench-venv, `pip install river==0.26.1`).
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

from river import datasets, ensemble, forest, linear_model, metrics, naive_bayes, tree

ROOT = Path(__file__).resolve().parent.parent


def load(path: Path, label: str):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    stream = []
    for r in rows:
        y = r.pop(label)
        stream.append(({k: float(v) for k, v in r.items()}, y))
    return stream


def river_models():
    return {
        "logistic_regression": lambda: linear_model.LogisticRegression(),
        "gaussian_nb": lambda: naive_bayes.GaussianNB(),
        "hoeffding_tree": lambda: tree.HoeffdingTreeClassifier(),
        "hoeffding_adaptive_tree": lambda seed=42: tree.HoeffdingAdaptiveTreeClassifier(seed=seed),
        "arf_10": lambda seed=42: forest.ARFClassifier(n_models=10, seed=seed),
        "leveraging_bagging_10": lambda seed=42: ensemble.LeveragingBaggingClassifier(
            model=tree.HoeffdingTreeClassifier(), n_models=10, seed=seed
        ),
        "srp_10": lambda seed=42: ensemble.SRPClassifier(n_models=10, seed=seed),
    }


# The members of Freshet's default selector, by their names in both tables.
SELECTOR_MEMBERS = ["arf_10", "hoeffding_adaptive_tree", "gaussian_nb", "logistic_regression"]


def best_member(river):
    """River's stand-in for the selector: its best single member on the stream, picked
    after the fact (River 0.26.1 has no greedy selector for classifiers)."""
    name = max(SELECTOR_MEMBERS, key=lambda m: river[m]["accuracy"])
    return {**river[name], "member": name}


def run_river(stream, positive):
    out = {}
    for name, make in river_models().items():
        model = make()
        acc = metrics.Accuracy()
        t = time.perf_counter()
        for x, y in stream:
            # Binary River learners want a boolean target.
            yb = y == positive
            acc.update(yb, model.predict_one(x))
            model.learn_one(x, yb)
        secs = time.perf_counter() - t
        out[name] = {"accuracy": acc.get(), "rows_per_sec": len(stream) / secs}
        print(f"  river   {name:<26} accuracy {acc.get():.4f}  {len(stream) / secs:>10.0f} rows/s", flush=True)
    return out


def run_freshet(binary: str, path: Path, label: str, seed: int = 42, quiet: bool = False):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [binary, "bench", "learners", "--data", str(path), "--label", label, "--json", out.name,
             "--seed", str(seed)],
            check=True,
            stdout=subprocess.DEVNULL if quiet else None,
            stderr=subprocess.DEVNULL if quiet else None,
        )
        return {r["learner"]: r for r in json.load(open(out.name))}


SWEEP_SEEDS = range(20)


def arf_seed_sweep(binary: str, path: Path, label: str, stream, positive):
    """Mean, min and max accuracy of ARF(10) over SWEEP_SEEDS, River and Freshet."""
    river, fresh = [], []
    for seed in SWEEP_SEEDS:
        model = river_models()["arf_10"](seed)
        acc = metrics.Accuracy()
        for x, y in stream:
            yb = y == positive
            acc.update(yb, model.predict_one(x))
            model.learn_one(x, yb)
        river.append(acc.get())
        fresh.append(run_freshet(binary, path, label, seed=seed, quiet=True)["arf_10"]["accuracy"])
    return river, fresh


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/freshet-target"))
    p.add_argument("--freshet", default=f"{target}/debug/freshet")
    p.add_argument("--elec2", default=str(ROOT.parent / "shared/data/elec2.csv"))
    a = p.parse_args()

    tmp = Path(tempfile.mkdtemp())
    phishing = tmp / "phishing.csv"
    rows = list(datasets.Phishing())
    with open(phishing, "w", newline="") as f:
        w = csv.writer(f)
        keys = list(rows[0][0].keys())
        w.writerow(keys + ["is_phishing"])
        for x, y in rows:
            w.writerow([x[k] for k in keys] + [int(y)])

    table = []
    sweep = None
    for name, path, label, positive in [
        ("elec2", Path(a.elec2), "class", "UP"),
        ("phishing", phishing, "is_phishing", "1"),
    ]:
        print(f"== {name}")
        stream = load(path, label)
        river = run_river(stream, positive)
        river["selector"] = best_member(river)
        fresh = run_freshet(a.freshet, path, label)
        if name == "phishing":
            sweep = arf_seed_sweep(a.freshet, path, label, stream, positive)
        for learner, r in river.items():
            f = fresh.get(learner)
            table.append((name, learner, r, f))

    print()
    print("| dataset | learner | River acc | Freshet acc | Δ pp | River rows/s | Freshet rows/s | speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, learner, r, f in table:
        if "member" in r:
            learner = f"{learner} (River: best member, {r['member']})"
        if f is None:
            print(f"| {name} | {learner} | {r['accuracy']:.4f} | — | — | {r['rows_per_sec']:,.0f} | — | — |")
            continue
        d = (f["accuracy"] - r["accuracy"]) * 100
        print(f"| {name} | {learner} | {r['accuracy']:.4f} | {f['accuracy']:.4f} | {d:+.2f} | "
              f"{r['rows_per_sec']:,.0f} | {f['rows_per_sec']:,.0f} | {f['rows_per_sec'] / r['rows_per_sec']:,.0f}× |")
    for name, learner, r, f in table:
        if f is not None and f.get("detail"):
            print(f"{name} {learner}: {f['detail']}")
    if sweep is not None:
        river, fresh = sweep
        print()
        print(f"ARF(10) on phishing, seeds {SWEEP_SEEDS.start}..{SWEEP_SEEDS.stop - 1}:")
        print("| side | mean acc | min | max |")
        print("|---|---:|---:|---:|")
        for side, accs in [("River", river), ("Freshet", fresh)]:
            print(f"| {side} | {sum(accs) / len(accs):.4f} | {min(accs):.4f} | {max(accs):.4f} |")


if __name__ == "__main__":
    main()
