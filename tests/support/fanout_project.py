"""A small real Kedro project whose pipelines fan out: independent branches and a join.

``branches``: three branches (``prep_<b>`` then ``fit_<b>``), no namespaces, then ``report``
reading every branch's model (one a pickle file, two in memory) and writing a CSV file and
an in-memory result. ``regions``: two namespaces (``north``, ``south``) of two nodes each
reading one shared parameter, and ``collect`` after them. ``failing``: ``branches`` with
``fit_b`` raising; ``failing_early``: with ``prep_b`` raising; ``fragile``: with ``fit_b``
raising while the marker file in $KEDRO_JOBS_TEST_MARKER exists (for reruns from failure).
``linear``: three nodes in a row (does not fan out). Nodes append their names to
$KEDRO_JOBS_TEST_RECORD, so "ran exactly once" is counted; ``params:pause`` seconds of
sleep in every ``fit`` node and ``params:prep_pause`` in every ``prep`` node let a test
cancel (or fail) a job while its groups run.
"""

from __future__ import annotations

from pathlib import Path

from kedro_jobs_local.counting_project import RECORDING_NODES, write_kedro_project

BRANCHES = ("a", "b", "c")

_CATALOG = """
model_a:
  type: pickle.PickleDataset
  filepath: data/06_models/model_a.pickle
  versioned: true

table:
  type: pandas.CSVDataset
  filepath: data/08_reporting/table.csv
"""

_NODES = (
    RECORDING_NODES
    + """
import time

import pandas as pd


def prep(x, branch, pause=0.0):
    _record("prep_" + branch)
    time.sleep(pause)
    return {"branch": branch, "values": [i * (ord(branch) - 96) for i in range(x)]}


def fit(raw, pause):
    _record("fit_" + raw["branch"])
    time.sleep(pause)
    return {"branch": raw["branch"], "weight": sum(raw["values"]) / len(raw["values"])}


def fit_fails(raw, pause):
    _record("fit_" + raw["branch"])
    if raw["branch"] == "b":
        raise ValueError("branch b does not fit")
    return fit(raw, pause)


def prep_fails(x, branch, pause=0.0):
    if branch == "b":
        _record("prep_b")
        raise ValueError("branch b has no data")
    return prep(x, branch, pause)


def fit_fragile(raw, pause):
    # Fails for branch b while the marker file ($KEDRO_JOBS_TEST_MARKER) exists: an outside
    # condition, so a rerun from failure has the same request.
    import os

    marker = os.environ.get("KEDRO_JOBS_TEST_MARKER", "")
    if raw["branch"] == "b" and marker and os.path.exists(marker):
        _record("fit_b")
        raise RuntimeError("the marker file is there")
    return fit(raw, pause)


def report(*models):
    _record("report")
    table = pd.DataFrame({"branch": [m["branch"] for m in models],
                          "weight": [m["weight"] for m in models]})
    return {"total": float(table["weight"].sum()), "branches": len(models)}, table


def step(x):
    _record("step")
    return x + 1
"""
)

_REGISTRY = """
from kedro.pipeline import node, pipeline

from {package}.nodes import fit, fit_fails, fit_fragile, prep, prep_fails, report, step


def _branches(fitting, preparing=prep):
    nodes = []
    for b in ("a", "b", "c"):
        nodes.append(node(lambda x, p, b=b: preparing(x, b, p),
                          ["params:x", "params:prep_pause"], "raw_" + b, name="prep_" + b))
        nodes.append(node(fitting, ["raw_" + b, "params:pause"], "model_" + b, name="fit_" + b))
    nodes.append(node(report, ["model_a", "model_b", "model_c"], ["summary", "table"],
                      name="report"))
    return pipeline(nodes)


def _regions():
    parts = [
        pipeline([
            node(lambda x, r=region: prep(x, r[0]), "params:x", "raw", name="prep"),
            node(fit, ["raw", "params:pause"], "model", name="fit"),
        ], namespace=region, parameters={{"params:x", "params:pause"}},
           outputs={{"model": region + "_model"}})
        for region in ("north", "south")
    ]
    collect = node(report, ["north_model", "south_model"], ["collected", "collected_table"],
                   name="collect")
    return sum(parts, pipeline([collect]))


def register_pipelines():
    linear = pipeline([
        node(step, "params:x", "one", name="one"),
        node(step, "one", "two", name="two"),
        node(step, "two", "three", name="three"),
    ])
    return {{"__default__": _branches(fit), "branches": _branches(fit),
             "failing": _branches(fit_fails), "failing_early": _branches(fit, prep_fails),
             "fragile": _branches(fit_fragile), "regions": _regions(), "linear": linear}}
"""


def write_fanout_project(root: Path, package: str = "fanout_project") -> Path:
    """Write the project under ``root`` (created) and return its path."""
    return write_kedro_project(
        root,
        package,
        _NODES,
        _REGISTRY,
        catalog=_CATALOG,
        parameters="x: 4\npause: 0.0\nprep_pause: 0.0\n",
    )
