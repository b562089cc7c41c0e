"""A small real Kedro project for jobs that continue across invocations: three nodes in a row,
each sleeping ``params:seconds``, passing in-memory values (one a free output produced by the
first node, so a result from an early segment) and files (a CSV, and versioned pickles written
in two different nodes, so the job's one save version shows). ``failing`` fails in its last
node. Nodes append their names to $KEDRO_JOBS_TEST_RECORD, so "ran exactly once" is counted."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kedro_jobs.runner.runner import KedroRunner
from kedro_jobs.runner.types import RunOutcome, RunRequest
from kedro_jobs_local.counting_project import RECORDING_NODES, write_kedro_project

NODES = ("first", "second", "third")

_CATALOG = """
table:
  type: pandas.CSVDataset
  filepath: data/02_intermediate/table.csv

early_copy:
  type: pickle.PickleDataset
  filepath: data/02_intermediate/early_copy.pickle
  versioned: true

model:
  type: pickle.PickleDataset
  filepath: data/06_models/model.pickle
  versioned: true
"""

_NODES = (
    RECORDING_NODES
    + """
import time

import pandas as pd


def first(x, seconds):
    _record("first")
    time.sleep(seconds)
    values = {"x": x, "squares": [i * i for i in range(x)]}
    return values, {"started_with": x}, values["squares"]


def second(values, seconds):
    _record("second")
    time.sleep(seconds)
    table = pd.DataFrame({"n": range(values["x"]), "square": values["squares"]})
    return table, {"weights": [s * 0.5 for s in values["squares"]]}


def third(values, table, model, seconds):
    _record("third")
    time.sleep(seconds)
    return {"rows": len(table), "total": float(table["square"].sum() + sum(model["weights"])),
            "x": values["x"]}


def boom(values, table, model, seconds):
    _record("boom")
    raise ValueError("the third node fails")
"""
)

_REGISTRY = """
from kedro.pipeline import node, pipeline

from {package}.nodes import boom, first, second, third


def _pipeline(last, name):
    return pipeline([
        node(first, ["params:x", "params:seconds"], ["values", "early", "early_copy"],
             name="first"),
        node(second, ["values", "params:seconds"], ["table", "model"], name="second"),
        node(last, ["values", "table", "model", "params:seconds"], "summary", name=name),
    ])


def register_pipelines():
    steps = _pipeline(third, "third")
    return {{"__default__": steps, "steps": steps, "failing": _pipeline(boom, "boom")}}
"""


def write_continuation_project(root: Path, package: str = "continuation_project") -> Path:
    """Write the project under ``root`` (created) and return its path."""
    return write_kedro_project(
        root, package, _NODES, _REGISTRY, catalog=_CATALOG, parameters="x: 6\nseconds: 0.3\n"
    )


def segment_request(
    job_id: str,
    pipeline: str = "steps",
    *,
    checkpoint: str | None = None,
    segment: int = 1,
    may_continue: bool = True,
    params: dict[str, Any] | None = None,
) -> RunRequest:
    """A request whose every node is expected to take a minute: with a deadline some seconds
    away, a segment runs one node (a segment always runs at least one) and continues."""
    return RunRequest(
        job_id,
        pipeline,
        params or {},
        {},
        checkpoint=checkpoint,
        may_continue=may_continue,
        node_estimates=dict.fromkeys(NODES, 60.0),
        segment=segment,
    )


def run_segments(
    runner: KedroRunner, job_id: str, pipeline: str = "steps", *, seconds: float = 30
) -> tuple[list[RunOutcome], list[tuple[int, int, str | None]]]:
    """Run a job segment after segment until it stops continuing; returns every segment's
    outcome and every progress call, in order."""
    calls: list[tuple[int, int, str | None]] = []

    def progress(completed: int, total: int, current: str | None) -> bool:
        calls.append((completed, total, current))
        return False

    outcomes: list[RunOutcome] = []
    checkpoint: str | None = None
    while not outcomes or outcomes[-1].status == "continued":
        assert len(outcomes) < 5, "a job of three nodes continued more than three times"
        request = segment_request(
            job_id, pipeline, checkpoint=checkpoint, segment=len(outcomes) + 1
        )
        outcomes.append(runner.run(request, progress, deadline=time.monotonic() + seconds))
        checkpoint = outcomes[-1].checkpoint
    return outcomes, calls
