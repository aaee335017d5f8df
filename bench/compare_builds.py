"""No-regression check: two builds of Freshet, measured alternately in one run.

    python3 bench/compare_builds.py --base /path/to/old/freshet --head /path/to/new/freshet
        [--runs 3] [--serve-seconds 10] [--tracking-seconds 5] [--json FILE]

For each of --runs rounds, in alternating order (base first in odd rounds, head first in
even ones, so neither always runs on a warmer or cooler machine):

- **serving**: `<build> bench serve --model lr`: the build trains a logistic regression
  on synthetic data, serves it from its own `freshet up` (capture on) and drives it with
  8 keep-alive connections of single-row requests for --serve-seconds;
- **tracking**: `<build> up` on an empty SQLite registry, driven by the head build's
  `bench tracking` client (the same client for both) for --tracking-seconds per
  workload.

Each server runs alone while measured. Prints every round, then per figure the median
of each build and head/base (requests/s and ops/s: higher is better; p99: lower is).
The load generators' code is the same in both builds only if `bench_serve.rs` and
`bench_tracking.rs` did not change between them; the script does not check that.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import urlopen


def serve(binary: str, seconds: float, out: Path) -> dict:
    subprocess.run([binary, "bench", "serve", "--model", "lr", "--seconds", str(seconds),
                    "--json", str(out)], check=True, stdout=subprocess.DEVNULL)
    r = json.loads(out.read_text())
    if isinstance(r, list):  # the bench's own server: one report per auth setting run
        r = r[0]["report"]
    return {"requests_per_sec": r["requests_per_sec"], "p99_ms": r["p99_ms"]}


def tracking(binary: str, client: str, seconds: float, work: Path) -> dict:
    work.mkdir()
    (work / "freshet.yaml").write_text("lake: { path: lake }\nregistry: { path: registry.db }\n")
    addr = work / "addr"
    log = open(work / "server.log", "wb")
    proc = subprocess.Popen([binary, "--config", str(work / "freshet.yaml"), "up", "--listen",
                             "127.0.0.1:0", "--addr-file", str(addr), "--no-sources"],
                            cwd=work, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        url = ""
        while not url:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{binary} up did not start: {(work / 'server.log').read_text()[-2000:]}")
            if addr.exists() and addr.read_text().strip():
                try:
                    u = f"http://{addr.read_text().strip()}"
                    if urlopen(f"{u}/readyz", timeout=2).status == 200:
                        url = u
                except OSError:
                    pass
            time.sleep(0.1)
        out = work / "tracking.json"
        subprocess.run([client, "bench", "tracking", "--url", url, "--seconds", str(seconds),
                        "--json", str(out)], check=True, stdout=subprocess.DEVNULL)
        return {w["name"]: w["ops_per_sec"] for w in json.loads(out.read_text())}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                epilog="\n".join(__doc__.splitlines()[2:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, help="the older build's freshet binary")
    p.add_argument("--head", required=True, help="the newer build's freshet binary")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--serve-seconds", type=float, default=10)
    p.add_argument("--tracking-seconds", type=float, default=5)
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    for b in (args.base, args.head):
        if not os.access(b, os.X_OK):
            p.error(f"{b} is not an executable")
    builds = {"base": args.base, "head": args.head}
    rounds: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="freshet-compare-") as tmp:
        for n in range(1, args.runs + 1):
            order = ["base", "head"] if n % 2 else ["head", "base"]
            got: dict = {}
            for b in order:
                d = Path(tmp) / f"{b}-{n}"
                d.mkdir()
                s = serve(builds[b], args.serve_seconds, d / "serve.json")
                t = tracking(builds[b], args.head, args.tracking_seconds, d / "tracking")
                got[b] = {"serve": s, "tracking": t}
                print(f"round {n} {b}: serve {s['requests_per_sec']:.0f} req/s p99 {s['p99_ms']:.2f} ms; "
                      + ", ".join(f"{k} {v:.1f}/s" for k, v in t.items()), flush=True)
            rounds.append(got)

    def series(b: str, fig: str) -> list[float]:
        if fig.startswith("serve:"):
            return [r[b]["serve"][fig[6:]] for r in rounds]
        return [r[b]["tracking"][fig] for r in rounds]

    figs = ["serve:requests_per_sec", "serve:p99_ms"] + list(rounds[0]["head"]["tracking"])
    summary = []
    print(f"\nmedian of {args.runs} rounds (head/base: > 1 is better, except p99 where < 1 is):")
    print("| figure | base | head | head/base | per round |")
    print("|---|---:|---:|---:|---|")
    for f in figs:
        b, h = series("base", f), series("head", f)
        per = [hh / bb if bb else float("inf") for hh, bb in zip(h, b)]
        row = {"figure": f, "base": statistics.median(b), "head": statistics.median(h),
               "ratio": statistics.median(per), "per_round": per}
        summary.append(row)
        print(f"| {f} | {row['base']:.2f} | {row['head']:.2f} | {row['ratio']:.3f} | "
              + ", ".join(f"{x:.3f}" for x in per) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"rounds": rounds, "summary": summary}, indent=2))


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as e:
        sys.exit(f"a bench command failed: {e}")
