"""One job's Kedro session, run in the calling process (the forked child, or the consumer
itself inline): runtime parameters, run options, the job's hooks, its results."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro_jobs.runner.checkpoint import Checkpointer
from kedro_jobs.runner.data import DataPlan, StagedOutput
from kedro_jobs.runner.hooks import DataPlanHook, ProgressHook, RunEvents
from kedro_jobs.runner.results import to_json_safe
from kedro_jobs.runner.types import RunRequest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Executed:
    results: dict[str, Any]  # JSON-safe in-memory free outputs (earlier segments' too)
    staged: list[StagedOutput]  # what the job saved (earlier segments too), still in staging
    checkpoint_seconds: float | None = None  # loading the checkpoint this run went on from


def nested_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys nest, as with `kedro run --params model_options.test_size=0.3`: merged into
    the other keys given, and (by Kedro) into the project's parameters, keeping siblings."""
    nested: dict[str, Any] = {}
    for key, value in parameters.items():
        *parents, leaf = key.split(".") if "." in key else [key]
        level = nested
        for part in parents:
            child = level.get(part)
            if not isinstance(child, dict):
                child = level[part] = {}
            level = child
        if isinstance(value, dict) and isinstance(level.get(leaf), dict):
            level[leaf] = {**level[leaf], **nested_parameters(value)}
        else:
            level[leaf] = nested_parameters(value) if isinstance(value, dict) else value
    return nested


@contextlib.contextmanager
def in_directory(path: Path) -> Iterator[None]:
    """Jobs run in the project folder, as `kedro run` does (plugins look for it there)."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def run_arguments(request: RunRequest) -> dict[str, Any]:
    """The job's run options as KedroSession.run's keyword arguments (those set): where
    the typed options become Kedro's, once."""
    options = request.options
    return {**options.filters(), "load_versions": options.load_versions or None}


def job_session(project_path: Path, request: RunRequest, plan: DataPlan) -> Any:
    """The Kedro session of one job's run (a whole run, a segment or a fanned-out group):
    its env and parameters, and the job's own save version as the session id, the save
    version of every versioned dataset (Kedro's is a millisecond timestamp, which two jobs
    can share)."""
    from kedro.framework.session import KedroSession

    session = KedroSession.create(
        project_path=project_path,
        env=request.options.env or None,
        runtime_params=nested_parameters(request.parameters) or None,
        save_on_close=False,
    )
    session.session_id = plan.save_version
    session._store["session_id"] = plan.save_version
    return session


def execute(
    project_path: Path,
    request: RunRequest,
    events: RunEvents,
    plan: DataPlan,
    checkpoints: Checkpointer,
) -> Executed:
    """Run the pipeline in this process, or the nodes its checkpoint left (``checkpoints``
    says where to save one, and which one this run goes on from). Raises the pipeline's
    error or StopRun."""
    from kedro.io import MemoryDataset
    from kedro.runner import SequentialRunner

    logger.info("Job %s: pipeline %s", request.job_id, request.pipeline_name)
    session = job_session(project_path, request, plan)
    resumed = checkpoints.resumed
    with session, in_directory(project_path):
        restored = checkpoints.restore()
        done_before = len(resumed.completed) if resumed else 0
        # Kedro has no public way to add a hook to one session; its manager is per session.
        session._hook_manager.register(ProgressHook(events, checkpoints, done_before))
        session._hook_manager.register(DataPlanHook(plan, restored))
        arguments = run_arguments(request)
        if resumed is not None:
            # The nodes left are a subset of the filtered pipeline: they replace its filters.
            arguments = {
                "node_names": resumed.remaining,
                "load_versions": arguments["load_versions"],
            }
        outputs = session.run(
            pipeline_names=[request.pipeline_name], runner=SequentialRunner(), **arguments
        )
    # Kedro returns every output's dataset: only the in-memory ones are results. A saved
    # output is listed as an output once committed, never loaded back (some cannot be).
    results = dict(resumed.results) if resumed else {}
    results.update(
        (name, to_json_safe(dataset.load()))
        for name, dataset in outputs.items()
        if isinstance(dataset, MemoryDataset)
    )
    return Executed(results, [*plan.carried, *plan.staged], checkpoints.seconds)
