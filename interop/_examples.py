"""Where the Rust example binaries of the interop tests live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def example(name: str) -> Path:
    """The example binary `name`: $FRESHET_EXAMPLES_DIR, else `examples/` beside
    $FRESHET_BIN (scripts/test.sh builds every target into the same folder), else the
    default cargo target folder."""
    candidates = []
    if os.environ.get("FRESHET_EXAMPLES_DIR"):
        candidates.append(Path(os.environ["FRESHET_EXAMPLES_DIR"]))
    if os.environ.get("FRESHET_BIN"):
        candidates.append(Path(os.environ["FRESHET_BIN"]).parent / "examples")
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/freshet-target"))
    candidates.append(Path(target) / "debug" / "examples")
    for folder in candidates:
        if (folder / name).is_file():
            return folder / name
    pytest.fail(f"example binary {name} not found in {[str(c) for c in candidates]}; "
                "build it with `cargo build -p freshet-monitor --examples`")
