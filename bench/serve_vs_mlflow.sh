#!/usr/bin/env bash
# Serving benchmark: Freshet's scoring endpoint against `mlflow models serve`, in one run,
# with the same load generator (`freshet bench serve`): single-row dataframe_records
# requests over 8 keep-alive connections, closed loop, for three kinds of model
# (logistic regression, a tree, gradient-boosted trees) trained on the same CSV.
# Usage: bench/serve_vs_mlflow.sh [seconds-per-run] [connections]
# Env: FRESHET_BENCH_VENV (default ~/.cache/freshet-bench-venv), MLFLOW_SERVE_WORKERS
# (passed as `--workers` to mlflow models serve; unset = MLflow's default),
# SERVE_BENCH_MODELS (default "lr tree gbt"), SERVE_BENCH_LOOP_MODELS (default "lr": also
# measured declared in the config, with their retraining loop on), SERVE_BENCH_KEEP
# (keep the work dir), SERVE_BENCH_LOOP_DETECTOR (the declared models' concept-drift
# detector, default none; adwin measures serving with monitoring on).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
per=${1:-10}
conns=${2:-8}
models=${SERVE_BENCH_MODELS:-lr tree gbt}
rows=20000
target=${CARGO_TARGET_DIR:-$HOME/.cache/freshet-target}
venv=${FRESHET_BENCH_VENV:-$HOME/.cache/freshet-bench-venv}
mlflow_version=3.17.2
py_pins=(scikit-learn==1.9.1 pandas==3.1.1 numpy==2.4.6)

if [ ! -x "$venv/bin/mlflow" ]; then
    echo "installing mlflow==$mlflow_version into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "mlflow==$mlflow_version"
fi
if ! "$venv/bin/python" -c 'import sklearn, pandas, numpy' 2>/dev/null; then
    "$venv/bin/pip" install -q "${py_pins[@]}"
fi
CARGO_TARGET_DIR=$target cargo build -q -p freshet
bin=$target/debug/freshet
py=$venv/bin/python
helper=$PWD/bench/serve_vs_mlflow.py
cols=f0,f1,f2,f3,f4,f5,f6,f7

work=$(mktemp -d)
res=$work/results
mkdir -p "$res"
fpid=""
mpid=""
cleanup() {
    [ -n "$fpid" ] && kill "$fpid" 2>/dev/null || true
    # mlflow models serve runs uvicorn as a child: stop the whole group it leads.
    [ -n "$mpid" ] && kill -- "-$mpid" 2>/dev/null || true
    wait 2>/dev/null || true
    if [ -n "${SERVE_BENCH_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "== data and models ($rows rows, 8 float features, bool label)"
"$py" "$helper" data "$work/bench.csv" "$rows"
# The config declares the given models. Their triggers are off (no first version from
# the loop, no drift detector), so no retraining runs during a measurement.
freshet_yaml() {
    cat <<'YAML'
lake: { path: lake, compaction: { enabled: false } }
registry: { path: registry.db }
streams:
  bench:
    source: { type: http }
    schema:
      fields:
        - { name: f0, type: float }
        - { name: f1, type: float }
        - { name: f2, type: float }
        - { name: f3, type: float }
        - { name: f4, type: float }
        - { name: f5, type: float }
        - { name: f6, type: float }
        - { name: f7, type: float }
        - { name: y, type: bool, required: true }
YAML
    [ $# -gt 0 ] && echo "models:"
    # SERVE_BENCH_LOOP_DETECTOR=adwin keeps monitoring on: the loop reads every captured
    # prediction back into its live error stream while serving is measured.
    # Drift of served traffic is always watched for declared models; here every second
    # (the default is every 10 s) so that a 10 s run sees it work.
    local off="triggers: { initial_rows: 1000000000000, concept_drift: ${SERVE_BENCH_LOOP_DETECTOR:-none} }, monitor: { every_secs: 1 }"
    for m in "$@"; do
        case $m in
            lr) echo "  lr: { stream: bench, label: y, learner: { type: logistic_regression }, $off }" ;;
            tree) echo "  tree: { stream: bench, label: y, learner: { type: hoeffding_tree }, $off }" ;;
            gbt) echo "  gbt: { stream: bench, label: y, learner: { type: gbt, n_trees: 100, max_depth: 6 }, $off }" ;;
        esac
    done
}
# shellcheck disable=SC2086
freshet_yaml $models >"$work/freshet.yaml"
F=("$bin" --config "$work/freshet.yaml")
"${F[@]}" ingest bench "$work/bench.csv" --quiet
for m in $models; do
    "${F[@]}" train "$m" --quiet | head -3
done
"$py" "$helper" train "$work/bench.csv" "$work/mlflow-models"

# Each server runs alone while it is measured, with only the measured model served.
# run_freshet MODEL TAG [DECLARED...]: the server's config declares DECLARED models.
# A declared model has its retraining loop running beside serving (it follows the
# live error stream, reading back every captured prediction); a model only registered
# (trained with the full config, then served by a config without it) is served alone.
api() { curl -sf -X "$1" "http://$addr/api/2.0/mlflow/registered-models/alias" \
    -H 'content-type: application/json' -d "$2" >/dev/null; }
run_freshet() {
    local m=$1 tag=$2
    shift 2
    freshet_yaml "$@" >"$work/freshet.yaml"
    rm -f "$work/addr"
    FRESHET_LOG=warn "${F[@]}" up --listen 127.0.0.1:0 --addr-file "$work/addr" --no-sources \
        >"$work/freshet-$tag-$m.log" 2>&1 &
    fpid=$!
    for _ in $(seq 1 600); do
        [ -s "$work/addr" ] && curl -sf "http://$(cat "$work/addr")/readyz" >/dev/null && break
        sleep 0.1
    done
    addr=$(cat "$work/addr")
    api POST "{\"name\":\"$m\",\"alias\":\"champion\",\"version\":\"1\"}"
    for _ in $(seq 1 200); do
        curl -sf "http://$addr/v2/models/$m/ready" >/dev/null && break
        sleep 0.05
    done
    curl -sf "http://$addr/v2/models/$m/ready" >/dev/null || { echo "freshet did not serve $m" >&2; tail "$work/freshet-$tag-$m.log" >&2; exit 1; }
    echo "== freshet $m, $tag ($addr, pid $fpid, capture on)"
    "$bin" bench serve --url "http://$addr" --model "$m" --columns "$cols" \
        --connections "$conns" --seconds "$per" --server-pid "$fpid" --json "$res/freshet-$tag-$m.json" >/dev/null
    # Nothing but the benchmark may have moved the champion (no retraining ran).
    v=$(curl -sf "http://$addr/api/2.0/mlflow/registered-models/alias?name=$m&alias=champion")
    grep -q '"version":"1"' <<<"$v" || { echo "champion of $m moved during the run: $v" >&2; exit 1; }
    api DELETE "{\"name\":\"$m\",\"alias\":\"champion\"}"
    kill "$fpid"
    wait "$fpid" 2>/dev/null || true
    fpid=""
    # Capture is on: the predictions landed in inference/<model>.
    "${F[@]}" table show "inference/$m" --limit 0 2>/dev/null | grep -iE "rows" | head -1 | sed "s/^/   inference\/$m: /" || true
}
for m in $models; do
    run_freshet "$m" serve
done
for m in ${SERVE_BENCH_LOOP_MODELS-lr}; do
    run_freshet "$m" loop "$m"
done

workers_arg=()
[ -n "${MLFLOW_SERVE_WORKERS:-}" ] && workers_arg=(--workers "$MLFLOW_SERVE_WORKERS")
for m in $models; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    PATH="$venv/bin:$PATH" setsid "$venv/bin/mlflow" models serve -m "$work/mlflow-models/$m" --env-manager local \
        -h 127.0.0.1 -p "$port" "${workers_arg[@]}" >"$work/mlflow-$m.log" 2>&1 &
    mpid=$!
    for _ in $(seq 1 600); do
        curl -sf "http://127.0.0.1:$port/ping" >/dev/null && break
        sleep 0.2
    done
    curl -sf "http://127.0.0.1:$port/ping" >/dev/null || { echo "mlflow models serve did not start:" >&2; tail -20 "$work/mlflow-$m.log" >&2; exit 1; }
    # Worker processes: uvicorn's command line says how many it was asked for.
    uv=$(ps -o args= --ppid "$mpid" | grep -m1 uvicorn || true)
    w=$(sed -n 's/.*--workers \([0-9]*\).*/\1/p' <<<"$uv")
    echo "${w:-1}" >"$res/mlflow-workers"
    echo "== mlflow models serve $m (127.0.0.1:$port, pid $mpid; $uv)"
    "$bin" bench serve --url "http://127.0.0.1:$port" --model "$m" --path /invocations --columns "$cols" \
        --connections "$conns" --seconds "$per" --server-pid "$mpid" --json "$res/mlflow-$m.json" >/dev/null
    kill -- "-$mpid" 2>/dev/null || true
    wait "$mpid" 2>/dev/null || true
    mpid=""
done

echo
echo "$per s per run, $conns connections, $(nproc) cores shared by server and load generator"
"$py" "$helper" table "$res"
