"""docs/compatibility.md says, for every endpoint of MLflow's REST API (as the installed
`mlflow` release defines them), whether Freshet serves it; this test probes a live
server for each and fails if the page and the server disagree, or if any endpoint falls
through to a bare 404 page, a 405 or a 5xx instead of a handler or MLflow's
`NOT_IMPLEMENTED` answer.

To rewrite the page's generated tables after a change:
`FRESHET_WRITE_COMPAT=1 FRESHET_BIN=... .venv/bin/python -m pytest interop/test_mlflow_compat.py`
"""

from __future__ import annotations

import os
from pathlib import Path

import requests

from mlflow_compat import BEGIN, END, endpoints, probe, replace_generated, table

PAGE = Path(__file__).resolve().parent.parent / "docs" / "compatibility.md"


def test_every_mlflow_endpoint_is_served_or_declined_as_the_page_says(server):
    eps = endpoints()
    # The four services of MLflow 3.17.2 define about 190 endpoints; far fewer means the
    # definitions were not read.
    assert len(eps) > 150, len(eps)
    with requests.Session() as s:
        results = [(e, probe(server, e, s)) for e in eps]
    gaps = [f"{e.method} {e.path} ({e.rpc}): {st}" for e, st in results
            if st not in ("served", "not implemented")]
    assert not gaps, "endpoints neither served nor declined:\n" + "\n".join(gaps)
    # The core every MLflow client uses is served, not declined.
    core = {"CreateExperiment", "SearchRuns", "LogBatch", "GetMetricHistory", "CreateRegisteredModel",
            "CreateModelVersion", "SetRegisteredModelAlias", "SearchLoggedModels", "UploadArtifact",
            "ListArtifacts"}
    assert {e.rpc for e, st in results if st == "served"} >= core
    generated = table(results)
    page = PAGE.read_text()
    assert BEGIN in page and END in page, f"{PAGE} lost its generated-table markers"
    wanted = replace_generated(page, generated)
    if os.environ.get("FRESHET_WRITE_COMPAT") == "1":
        PAGE.write_text(wanted)
        page = wanted
    assert page == wanted, (
        f"{PAGE} disagrees with the server; rewrite its tables with FRESHET_WRITE_COMPAT=1 "
        "(see this file's docstring) and review the change"
    )
