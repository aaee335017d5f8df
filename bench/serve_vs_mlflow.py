"""Helpers for bench/serve_vs_mlflow.sh (run with the bench virtualenv's Python).

    python serve_vs_mlflow.py data OUT.csv ROWS        synthetic CSV: f0..f7 floats, y bool
    python serve_vs_mlflow.py train CSV OUT_DIR        sklearn models saved as MLflow models
    python serve_vs_mlflow.py table RESULTS_DIR        the markdown table of both sides
"""

import json
import os
import sys

FEATURES = [f"f{i}" for i in range(8)]
# Freshet model name -> (scikit-learn counterpart, description)
MODELS = {
    "lr": "LogisticRegression()",
    "tree": "DecisionTreeClassifier(max_depth=8)",
    "gbt": "HistGradientBoostingClassifier(max_iter=100, max_depth=6)",
}
FRESHET_LEARNER = {
    "lr": "logistic_regression",
    "tree": "hoeffding_tree",
    "gbt": "gbt (100 trees, depth 6)",
}


def data(out, rows):
    import numpy as np

    rng = np.random.default_rng(42)
    x = rng.normal(size=(rows, len(FEATURES)))
    w = np.array([1.5, -2.0, 0.7, 0.0, 1.0, -0.5, 0.3, 0.0])
    score = x @ w + 0.8 * x[:, 0] * x[:, 1] - np.abs(x[:, 2]) + rng.normal(scale=0.5, size=rows)
    y = score > 0
    with open(out, "w") as f:
        f.write(",".join(FEATURES + ["y"]) + "\n")
        for xi, yi in zip(x, y):
            f.write(",".join(f"{v:.6f}" for v in xi) + ("," + ("true" if yi else "false")) + "\n")


def train(csv, out_dir):
    import mlflow.sklearn
    import pandas as pd
    import skops.io
    from mlflow.models import infer_signature
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    df = pd.read_csv(csv)
    x, y = df[FEATURES], df["y"].astype(bool)
    cut = int(len(df) * 0.8)  # the newest 20 % held out, as freshet train does
    for name, model in [
        ("lr", LogisticRegression()),
        ("tree", DecisionTreeClassifier(max_depth=8, random_state=0)),
        ("gbt", HistGradientBoostingClassifier(max_iter=100, max_depth=6, random_state=0)),
    ]:
        model.fit(x[:cut], y[:cut])
        acc = model.score(x[cut:], y[cut:])
        sig = infer_signature(x[:5], model.predict(x[:5]))
        # MLflow 3 stores sklearn models with skops, which refuses types it cannot audit
        # (tree node arrays) unless told to trust them: these models are our own.
        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
        mlflow.sklearn.save_model(
            model, os.path.join(out_dir, name), signature=sig, skops_trusted_types=trusted
        )
        print(f"sklearn {name}: {MODELS[name]}, holdout accuracy {acc:.4f}")


def table(results):
    def load(side, m):
        p = os.path.join(results, f"{side}-{m}.json")
        return json.load(open(p)) if os.path.exists(p) else None

    workers = open(os.path.join(results, "mlflow-workers")).read().strip() if os.path.exists(
        os.path.join(results, "mlflow-workers")) else "?"
    print()
    print("| model | server | requests/s | p50 ms | p99 ms | failures | peak RSS MB | server CPU (cores) | client CPU | req/s ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in MODELS:
        f, fl, ml = load("freshet-serve", m), load("freshet-loop", m), load("mlflow", m)
        ratio = f["requests_per_sec"] / ml["requests_per_sec"] if f and ml and ml["requests_per_sec"] else None
        lratio = fl["requests_per_sec"] / ml["requests_per_sec"] if fl and ml and ml["requests_per_sec"] else None
        for side, r, label, rt in [
                ("freshet", f, f"Freshet `{FRESHET_LEARNER[m]}`", ratio),
                ("freshet", fl, f"Freshet `{FRESHET_LEARNER[m]}`, declared: retraining loop on", lratio),
                ("mlflow", ml, f"MLflow sklearn `{MODELS[m]}`, {workers} worker(s)", None)]:
            if r is None:
                continue
            rss = r.get("server_peak_rss_mb")
            cpu = r.get("server_cpu_cores")
            ccpu = r.get("client_cpu_cores")
            rr = f"**{rt:.0f}×**" if rt else ""
            print(f"| {m} | {label} | {r['requests_per_sec']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                  f"{r['failures']} | {rss:.0f} | {cpu:.2f} | {ccpu:.2f} | {rr} |")
    print()
    for m in MODELS:
        for tag in ["serve", "loop"]:
            f = load(f"freshet-{tag}", m)
            if f:
                print(f"freshet {m} ({tag}): vm_hwm {f.get('server_vm_hwm_mb', 0):.0f} MB; "
                      f"first answer {f['first_response']}")
        ml = load("mlflow", m)
        if ml:
            procs = ", ".join(f"{c} {mb:.0f} MB" for _, c, mb in ml.get("server_hwm_by_process", []))
            print(f"mlflow  {m}: vm_hwm {ml.get('server_vm_hwm_mb', 0):.0f} MB ({procs}); "
                  f"first answer {ml['first_response']}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "data":
        data(sys.argv[2], int(sys.argv[3]))
    elif cmd == "train":
        train(sys.argv[2], sys.argv[3])
    elif cmd == "table":
        table(sys.argv[2])
    else:
        sys.exit(f"unknown command {cmd}")
