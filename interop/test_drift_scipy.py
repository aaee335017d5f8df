"""Freshet's drift statistics against SciPy (and Evidently's binning and PSI formula,
written out with NumPy) on the same samples, to 1e-9."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from _examples import example

TOL = 1e-9


def evidently_fractions(reference, current):
    """Evidently's get_binned_data for a numeric column (without the zero fill)."""
    if len(np.unique(reference)) > 20:
        edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
        return (np.histogram(reference, edges)[0] / len(reference),
                np.histogram(current, edges)[0] / len(current))
    keys = sorted(set(reference) | set(current))
    return (np.array([np.sum(reference == k) / len(reference) for k in keys]),
            np.array([np.sum(current == k) / len(current) for k in keys]))


def evidently_psi(ref, cur):
    ref, cur = ref.copy(), cur.copy()
    for arr in (ref, cur):
        smallest = min(arr[arr != 0])
        np.place(arr, arr == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def cases():
    rng = np.random.default_rng(20240607)
    yield "normal shift", rng.normal(0, 1, 300), rng.normal(0.3, 1.2, 400)
    yield "equal sizes", rng.normal(0, 1, 250), rng.normal(0.1, 1, 250)
    yield "ties", rng.integers(0, 12, 500).astype(float), rng.integers(2, 14, 700).astype(float)
    yield "tiny", rng.normal(0, 1, 7), rng.normal(1, 1, 5)
    yield "skewed", rng.exponential(2.0, 1000), rng.exponential(2.5, 3000)
    yield "same", np.arange(50.0), np.arange(50.0)


@pytest.mark.parametrize("name,reference,current", list(cases()), ids=lambda v: v if isinstance(v, str) else "")
def test_statistics_match_scipy(tmp_path, name, reference, current):
    rng = np.random.default_rng(len(name))
    k = 6
    expected = rng.integers(5, 60, k).astype(float)
    observed = rng.multinomial(int(expected.sum()), expected / expected.sum()).astype(float)
    p, q = rng.random(k), rng.random(k)
    p[2] = 0.0  # a bin empty on one side only
    payload = {
        "reference": reference.tolist(), "current": current.tolist(),
        "observed": observed.tolist(), "expected": expected.tolist(),
        "p": p.tolist(), "q": q.tolist(),
    }
    (tmp_path / "input.json").write_text(json.dumps(payload))
    out = subprocess.run([str(example("drift_stats")), str(tmp_path / "input.json")],
                         check=True, capture_output=True, text=True).stdout
    got = json.loads(out)

    ks = stats.ks_2samp(reference, current)
    assert got["ks_method"] == "exact"
    assert got["ks_statistic"] == pytest.approx(ks.statistic, abs=TOL, rel=0)
    assert got["ks_pvalue"] == pytest.approx(ks.pvalue, abs=TOL, rel=0)

    w = stats.wasserstein_distance(reference, current)
    assert got["wasserstein"] == pytest.approx(w, abs=TOL, rel=0)
    assert got["wasserstein_normed"] == pytest.approx(w / max(np.std(reference), 0.001), abs=TOL, rel=0)

    assert got["jensenshannon"] == pytest.approx(distance.jensenshannon(p, q), abs=TOL, rel=0)
    assert got["jensenshannon_base2"] == pytest.approx(distance.jensenshannon(p, q, base=2), abs=TOL, rel=0)

    chi = stats.chisquare(observed, expected)
    assert got["chisquare_statistic"] == pytest.approx(chi.statistic, abs=TOL, rel=0)
    assert got["chisquare_pvalue"] == pytest.approx(chi.pvalue, abs=TOL, rel=0)

    rf, cf = evidently_fractions(reference, current)
    assert got["binned_jensenshannon"] == pytest.approx(distance.jensenshannon(rf, cf), abs=TOL, rel=0)
    assert got["binned_psi"] == pytest.approx(evidently_psi(rf, cf), abs=TOL, rel=0)


def test_psi_hand_computed_case(tmp_path):
    """PSI against a case computed by hand: reference 10/20/30/40 %, current 20/20/20/40 %
    → (0.1−0.2)·ln 0.5 + (0.3−0.2)·ln 1.5 = ln(3)/10, through the same binning as Freshet."""
    reference = np.repeat([0.0, 1.0, 2.0, 3.0], [10, 20, 30, 40])
    current = np.repeat([0.0, 1.0, 2.0, 3.0], [20, 20, 20, 40])
    payload = {"reference": reference.tolist(), "current": current.tolist(),
               "observed": [1.0], "expected": [1.0], "p": [1.0], "q": [1.0]}
    (tmp_path / "input.json").write_text(json.dumps(payload))
    out = subprocess.run([str(example("drift_stats")), str(tmp_path / "input.json")],
                         check=True, capture_output=True, text=True).stdout
    assert json.loads(out)["binned_psi"] == pytest.approx(np.log(3) / 10, abs=1e-12, rel=0)
