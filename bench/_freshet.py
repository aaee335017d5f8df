"""What the Python benchmarks share: where the freshet binary is, how many records a
running server has committed to a stream, and timing a source's rows into their table."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import requests


def binary() -> str:
    """$FRESHET_BIN, else the workspace's debug build (the optimised dev profile)."""
    if b := os.environ.get("FRESHET_BIN"):
        return b
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache/freshet-target")
    return str(Path(target) / "debug" / "freshet")


def metric(url: str, name: str, stream: str) -> int:
    """The value of `name{stream="..."}` on the server's /metrics (0 when absent)."""
    text = requests.get(f"{url}/metrics", timeout=5).text
    m = re.search(rf'^{name}\{{stream="{re.escape(stream)}"\}} (\d+)', text, re.M)
    return int(m.group(1)) if m else 0


def time_ingest(root: Path, config: str, n: int, stream: str = "cards",
                count_column: str = "transaction_id") -> dict:
    """Start `freshet up` on `config` (written to root/freshet.yaml) and time its source
    until `n` rows of `stream` are committed: rows committed
    (`freshet_records_out_total`, sampled every 50 ms) from the first commit to the last,
    divided by that time. Fails unless the Delta table then holds exactly `n` rows."""
    from deltalake import DeltaTable

    (root / "freshet.yaml").write_text(config)
    addr = root / "addr"
    log = open(root / "server.log", "w")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [binary(), "--config", str(root / "freshet.yaml"), "up", "--listen", "127.0.0.1:0",
         "--addr-file", str(addr)],
        cwd=root, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        while not (addr.exists() and addr.read_text().strip()):
            if proc.poll() is not None:
                raise RuntimeError((root / "server.log").read_text())
            time.sleep(0.02)
        url = f"http://{addr.read_text().strip()}"
        first_t = first_c = None
        deadline = time.perf_counter() + 600
        while True:
            c = metric(url, "freshet_records_out_total", stream)
            t = time.perf_counter()
            if c > 0 and first_t is None:
                first_t, first_c = t, c
            if c >= n:
                break
            if t > deadline or proc.poll() is not None:
                raise RuntimeError(f"only {c} of {n} rows after 600 s:\n" + (root / "server.log").read_text()[-3000:])
            time.sleep(0.05)
        total = t - started
    finally:
        proc.terminate()
        proc.wait(60)
    rows = DeltaTable(str(root / "lake/events" / stream)).to_pyarrow_table(columns=[count_column]).num_rows
    if rows != n:
        raise RuntimeError(f"the table holds {rows} rows, produced {n}")
    if t <= first_t:
        raise RuntimeError(f"all {n} records landed in the first commit: too few to time; raise the count")
    steady = (n - first_c) / (t - first_t)
    return {"records_per_s": round(steady), "seconds_first_to_last": round(t - first_t, 2),
            "seconds_from_start": round(total, 2), "first_commit_rows": first_c}
