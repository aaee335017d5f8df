"""What the Python benchmarks share: where the freshet binary is, and how many records
a running server has committed to a stream."""

from __future__ import annotations

import os
import re
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
