"""A small real Kedro project for reruns from failure: four nodes in a row, passing in-memory
values and files (a CSV, a versioned pickle), whose third node, ``fragile``, fails while a
marker file exists (the path in $KEDRO_JOBS_TEST_MARKER: an outside condition, not a
parameter, so a rerun has the same request). Nodes append their names to
$KEDRO_JOBS_TEST_RECORD, so "did not run again" is counted."""

from __future__ import annotations

from pathlib import Path

from kedro_jobs_local.counting_project import write_pyproject

MARKER_VAR = "KEDRO_JOBS_TEST_MARKER"
NODES = ("load", "prepare", "fragile", "report")

_CATALOG = """
table:
  type: pandas.CSVDataset
  filepath: data/02_intermediate/table.csv

model:
  type: pickle.PickleDataset
  filepath: data/06_models/model.pickle
  versioned: true

scores:
  type: pandas.CSVDataset
  filepath: data/07_model_output/scores.csv
"""

_NODES = """
import os

import pandas as pd


def _record(name):
    path = os.environ.get("KEDRO_JOBS_TEST_RECORD")
    if path:
        with open(path, "a") as handle:
            handle.write(name + "\\n")


def load(x):
    _record("load")
    return {"x": x, "values": [i * 3 for i in range(x)]}, {"loaded": x}


def prepare(loaded):
    _record("prepare")
    table = pd.DataFrame({"n": range(loaded["x"]), "value": loaded["values"]})
    return table, {"weights": [v * 0.5 for v in loaded["values"]]}


def fragile(loaded, table):
    _record("fragile")
    marker = os.environ.get("KEDRO_JOBS_TEST_MARKER", "")
    if marker and os.path.exists(marker):
        raise RuntimeError("the marker file is there")
    return table.assign(score=table["value"] * 2 + loaded["x"])


def report(scored, model):
    _record("report")
    total = float(scored["score"].sum() + sum(model["weights"]))
    return scored, {"rows": len(scored), "total": total}
"""

_REGISTRY = """
from kedro.pipeline import node, pipeline

from {package}.nodes import fragile, load, prepare, report


def register_pipelines():
    rerun = pipeline([
        node(load, "params:x", ["loaded", "early"], name="load"),
        node(prepare, "loaded", ["table", "model"], name="prepare"),
        node(fragile, ["loaded", "table"], "scored", name="fragile"),
        node(report, ["scored", "model"], ["scores", "summary"], name="report"),
    ])
    return {{"__default__": rerun, "rerun": rerun}}
"""


def write_rerun_project(root: Path, package: str = "rerun_project") -> Path:
    """Write the project under ``root`` (created) and return its path."""
    src = root / "src" / package
    src.mkdir(parents=True)
    for folder in ("conf/base", "conf/local"):
        (root / folder).mkdir(parents=True)
    write_pyproject(root, package)
    (root / "conf" / "base" / "catalog.yml").write_text(_CATALOG)
    (root / "conf" / "base" / "parameters.yml").write_text("x: 5\n")
    (src / "__init__.py").write_text("")
    (src / "settings.py").write_text("")
    (src / "nodes.py").write_text(_NODES)
    (src / "pipeline_registry.py").write_text(_REGISTRY.format(package=package))
    return root
