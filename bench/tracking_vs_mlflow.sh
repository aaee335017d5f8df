#!/usr/bin/env bash
# Tracking server benchmark: Freshet against a real `mlflow server` (SQLite backend),
# in one run, with the same client (`freshet bench tracking`) and the same workload.
# Usage: bench/tracking_vs_mlflow.sh [seconds-per-workload] [clients]
# Installs MLflow into $FRESHET_BENCH_VENV (default ~/.cache/freshet-bench-venv) once.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
per=${1:-5}
clients=${2:-4}
target=${CARGO_TARGET_DIR:-$HOME/.cache/freshet-target}
venv=${FRESHET_BENCH_VENV:-$HOME/.cache/freshet-bench-venv}
mlflow_version=3.17.2

if [ ! -x "$venv/bin/mlflow" ]; then
    echo "installing mlflow==$mlflow_version into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "mlflow==$mlflow_version"
fi
CARGO_TARGET_DIR=$target cargo build -q -p freshet
bin=$target/debug/freshet

work=$(mktemp -d)
fpid=""
mpid=""
cleanup() {
    [ -n "$fpid" ] && kill "$fpid" 2>/dev/null || true
    [ -n "$mpid" ] && kill "$mpid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Each server runs alone while it is measured: the machine is small and shared, and a
# second idle server's background work would otherwise tax whichever is measured.
printf 'lake: { path: lake }\nregistry: { path: registry.db }\n' >"$work/freshet.yaml"
"$bin" --config "$work/freshet.yaml" up --listen 127.0.0.1:0 --addr-file "$work/addr" --no-sources >"$work/freshet.log" 2>&1 &
fpid=$!
for _ in $(seq 1 600); do
    [ -s "$work/addr" ] && curl -sf "http://$(cat "$work/addr")/readyz" >/dev/null && break
    sleep 0.1
done
echo "== freshet ($(cat "$work/addr"))"
"$bin" bench tracking --url "http://$(cat "$work/addr")" --seconds "$per" --clients "$clients" --json "$work/freshet.json"
kill "$fpid"
wait "$fpid" 2>/dev/null || true
fpid=""

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/mlflow" server --backend-store-uri "sqlite:///$work/mlflow.db" \
    --default-artifact-root "$work/artifacts" --host 127.0.0.1 --port "$port" >"$work/mlflow.log" 2>&1 &
mpid=$!
for _ in $(seq 1 900); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
    sleep 0.2
done
curl -sf "http://127.0.0.1:$port/health" >/dev/null || { echo "mlflow server did not start:" >&2; tail -20 "$work/mlflow.log" >&2; exit 1; }
echo "== mlflow server $mlflow_version (127.0.0.1:$port, sqlite)"
"$bin" bench tracking --url "http://127.0.0.1:$port" --seconds "$per" --clients "$clients" --json "$work/mlflow.json"

python3 - "$work/freshet.json" "$work/mlflow.json" <<'PY'
import json, sys
f = {w["name"]: w for w in json.load(open(sys.argv[1]))}
m = {w["name"]: w for w in json.load(open(sys.argv[2]))}
print()
print(f"| workload | freshet ops/s | mlflow ops/s | ratio | freshet p50 ms | mlflow p50 ms |")
print(f"|---|---:|---:|---:|---:|---:|")
for name in f:
    a, b = f[name], m[name]
    ratio = a["ops_per_sec"] / b["ops_per_sec"] if b["ops_per_sec"] else float("inf")
    print(f"| {name} | {a['ops_per_sec']:.1f} | {b['ops_per_sec']:.1f} | {ratio:.1f}x | {a['p50_ms']:.2f} | {b['p50_ms']:.2f} |")
PY
