#!/usr/bin/env python3
"""Gradient-boosted trees: Freshet against scikit-learn's HistGradientBoostingClassifier.

Elec2 (../shared/data/elec2.csv, label `class`, every other column numeric) with an
out-of-time split: the first 80% of rows train, the last 20% test. Both sides get the
same settings: 100 trees, learning rate 0.1, max depth 6, 255 bins, L2 1.0, at least
20 rows per leaf, no early stopping; once with scikit-learn's default cap of 31
leaves per tree and once uncapped (depth-wise). Reported: test accuracy, ROC AUC of
class UP, and fit time (median of --repeats fits; scikit-learn on one thread, like
Freshet's fit, unless --sklearn-threads says otherwise).

Freshet's side is the `gbt_elec2` example of the learn crate, built with the
workspace's one (optimised) dev profile.

Usage: bench/gbt_vs_sklearn.py [--elec2 PATH] [--repeats N] [--sklearn-threads N]
Needs scikit-learn in the bench virtualenv: ~/.cache/freshet-bench-venv, `pip install scikit-learn`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CONFIGS = {"max 31 leaves": 31, "uncapped leaves": None}


def load(path: Path, label: str):
    import numpy as np
    import pandas as pd

    df = pd.read_csv(path)
    y = df.pop(label).astype(str).to_numpy()
    return df.to_numpy(dtype=np.float64), y


def run_sklearn(x, y, train_frac, max_leaves, repeats):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import accuracy_score, roc_auc_score

    n = int(len(x) * train_frac)
    times, model = [], None
    for _ in range(repeats):
        model = HistGradientBoostingClassifier(
            max_iter=100,
            learning_rate=0.1,
            max_depth=6,
            max_bins=255,
            max_leaf_nodes=max_leaves,
            l2_regularization=1.0,
            min_samples_leaf=20,
            early_stopping=False,
            random_state=0,
        )
        t = time.perf_counter()
        model.fit(x[:n], y[:n])
        times.append(time.perf_counter() - t)
    proba = model.predict_proba(x[n:])
    positive = list(model.classes_).index("UP")
    return {
        "accuracy": accuracy_score(y[n:], model.predict(x[n:])),
        "auc": roc_auc_score(y[n:] == "UP", proba[:, positive]),
        "fit_seconds": statistics.median(times),
    }


def run_freshet(data, train_frac, max_leaves, repeats):
    params = {
        "n_trees": 100,
        "learning_rate": 0.1,
        "max_depth": 6,
        "max_bins": 255,
        "max_leaves": max_leaves,
        "lambda": 1.0,
        "min_samples_leaf": 20,
    }
    cmd = ["cargo", "run", "-q", "-p", "freshet-learn", "--example", "gbt_elec2", "--"]
    cmd += ["--data", str(data), "--label", "class", "--train-frac", str(train_frac)]
    cmd += ["--params", json.dumps(params)]
    runs = [json.loads(subprocess.check_output(cmd, cwd=ROOT, text=True)) for _ in range(repeats)]
    out = runs[-1]
    out["fit_seconds"] = statistics.median(r["fit_seconds"] for r in runs)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--elec2", type=Path, default=ROOT.parent / "shared/data/elec2.csv")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sklearn-threads", type=int, default=1)
    args = ap.parse_args()
    # Must be set before scikit-learn (and its OpenMP runtime) is imported.
    os.environ["OMP_NUM_THREADS"] = str(args.sklearn_threads)
    os.environ.setdefault("CARGO_TARGET_DIR", str(Path.home() / ".cache/freshet-target"))
    import sklearn

    x, y = load(args.elec2, "class")
    results = {}
    print(f"Elec2, {len(x)} rows, first 80% train, last 20% test; scikit-learn {sklearn.__version__}")
    print(f"{'config':<16} {'learner':<10} {'accuracy':>9} {'AUC':>7} {'fit s':>7}")
    for name, leaves in CONFIGS.items():
        for learner, run in [
            ("freshet", lambda: run_freshet(args.elec2, 0.8, leaves, args.repeats)),
            ("sklearn", lambda: run_sklearn(x, y, 0.8, leaves, args.repeats)),
        ]:
            r = run()
            results[f"{name}/{learner}"] = r
            print(f"{name:<16} {learner:<10} {r['accuracy']:>9.4f} {r['auc']:>7.4f} {r['fit_seconds']:>7.3f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
