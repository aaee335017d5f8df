"""Freshet's concept-drift detectors against River 0.26.1's on the same streams: both
run with their defaults and must flag drifts (and warnings) at exactly the same
indices. KSWIN is randomised; Freshet reproduces Python's `random.Random(seed)` and
SciPy's exact KS p-value, so with the same seed it matches index for index too."""

from __future__ import annotations

import json
import random
import subprocess

import numpy as np
import pytest
from river import drift

from _examples import example

SEEDS = (1, 2, 3)


def binary_abrupt(seed):
    rng = np.random.default_rng(seed)
    p = np.where(np.arange(4000) < 2000, 0.1, 0.45)
    return (rng.random(4000) < p).astype(int).tolist()


def binary_gradual(seed):
    rng = np.random.default_rng(100 + seed)
    t = np.arange(5000)
    p = 0.15 + 0.35 / (1 + np.exp(-(t - 2500) / 150))
    return (rng.random(5000) < p).astype(int).tolist()


def real_abrupt(seed):
    rng = np.random.default_rng(200 + seed)
    x = np.concatenate([rng.normal(0.0, 1.0, 1500), rng.normal(1.5, 1.0, 1500),
                        rng.normal(-1.0, 0.5, 1500)])
    return x.tolist()


def river_docstring_stream():
    """The stream of River's own docstring examples."""
    rng = random.Random(12345)
    return rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)


RIVER = {
    "adwin": drift.ADWIN,
    "page_hinkley": drift.PageHinkley,
    "ddm": drift.binary.DDM,
    "eddm": drift.binary.EDDM,
    "hddm_a": drift.binary.HDDMA,
    "hddm_w": drift.binary.HDDMW,
    "kswin": drift.KSWIN,
}
BINARY_ONLY = {"ddm", "eddm", "hddm_a", "hddm_w"}


def streams():
    for seed in SEEDS:
        yield f"binary_abrupt_{seed}", binary_abrupt(seed)
        yield f"binary_gradual_{seed}", binary_gradual(seed)
        yield f"real_abrupt_{seed}", real_abrupt(seed)
    yield "river_docstring", river_docstring_stream()


def run_river(name, xs, seed):
    det = RIVER[name](seed=seed) if name == "kswin" else RIVER[name]()
    drifts, warnings = [], []
    for i, x in enumerate(xs):
        det.update(x)
        if det.drift_detected:
            drifts.append(i)
        elif getattr(det, "warning_detected", False):
            warnings.append(i)
    return drifts, warnings


def run_freshet(tmp_path, name, xs, seed):
    path = tmp_path / "stream.txt"
    path.write_text("\n".join(repr(float(x)) for x in xs) + "\n")
    out = subprocess.run([str(example("detect")), name, str(path), str(seed)],
                         check=True, capture_output=True, text=True).stdout
    got = json.loads(out)
    return got["drifts"], got["warnings"]


CASES = [(name, sname, xs) for name in RIVER for sname, xs in streams()
         if not (name in BINARY_ONLY and sname.startswith(("real", "river")))]


@pytest.mark.parametrize("name,stream,xs", CASES, ids=[f"{n}-{s}" for n, s, _ in CASES])
def test_same_detections_as_river(tmp_path, name, stream, xs):
    seed = 42
    river_drifts, river_warnings = run_river(name, xs, seed)
    drifts, warnings = run_freshet(tmp_path, name, xs, seed)
    assert drifts == river_drifts
    assert warnings == river_warnings


def test_streams_exercise_the_detectors(tmp_path):
    """Guard against a vacuous comparison: every detector fires somewhere."""
    for name in RIVER:
        fired = [s for n, s, xs in CASES if n == name and run_river(name, xs, 42)[0]]
        assert fired, name
