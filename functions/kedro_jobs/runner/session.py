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
from kedro_jobs.runner.shared_config import SharedConfigHook, shared_config
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


def run_arguments(request: RunRequest, *, nodes: list[str] | None = None) -> dict[str, Any]:
    """The job's run options as Kedro's session.run keyword arguments (those set): where the
    typed options become Kedro's, once. ``nodes``: run just these (a resumed segment's
    remaining nodes, a fanned-out group's), a subset of what the options' filters select,
    which they replace."""
    options = request.options
    filters = options.filters() if nodes is None else {"node_names": nodes}
    return {**filters, "load_versions": options.load_versions or None}


# One KedroServiceSession per project and env, made once (in the warm parent, before it
# forks: see service_session) and used for many runs: its hook manager (the project's hooks
# and plugins, found once), its pipelines (all loaded once: "serving mode").
_SERVICE_SESSIONS: dict[tuple[Path, str | None], Any] = {}
_made = 0  # service sessions made: a child forked before one lacks it (forked.py)


def service_session(project_path: Path, env: str | None) -> Any:
    """The project's KedroServiceSession for ``env`` (None: the project's default). In
    serving mode, as for callers it does not trust: runtime parameters may not choose a
    dataset's type."""
    global _made
    key = (project_path, env)
    session = _SERVICE_SESSIONS.get(key)
    if session is None:
        from kedro.framework.session import KedroServiceSession

        session = KedroServiceSession.create(project_path=project_path, env=env, serving_mode=True)
        _SERVICE_SESSIONS[key] = session
        _made += 1
    return session


def prepared() -> tuple[int, int]:
    """Changes as often as what ``prepare`` keeps for later jobs changes."""
    from kedro_jobs.runner.shared_config import changes

    return _made, changes()


def prepare(project_path: Path, request: RunRequest) -> None:
    """What a job's run needs that is the same for every job of its shape, made in the warm
    parent before it forks, so that every later job's child has it: the env's service
    session, and the config a run of these parameters reads (shared_config.py)."""
    service = service_session(project_path, request.options.env or None)
    shared_config(project_path, service.env, nested_parameters(request.parameters) or None)


class JobSession:
    """One job's run (a whole run, a segment or a fanned-out group) in the project's service
    session: its env and parameters, and the job's own save version as the run id, the save
    version of every versioned dataset (Kedro's is a millisecond timestamp, which two jobs
    can share). The job's hooks are registered for this run only."""

    def __init__(
        self,
        service: Any,
        request: RunRequest,
        plan: DataPlan,
        project_path: Path | None = None,
    ) -> None:
        self.service = service
        self.run_id = plan.save_version
        self.runtime_params = nested_parameters(request.parameters) or None
        self._hooks: list[object] = []
        # The config every run of this shape reads, read once (None: this run reads it).
        self.shared = (
            None
            if project_path is None
            else shared_config(project_path, service.env, self.runtime_params)
        )

    def register(self, *hooks: object) -> None:
        # Kedro has no public way to add a hook to one run: its hook manager is the session's.
        for hook in hooks:
            self.service._hook_manager.register(hook)
            self._hooks.append(hook)

    def load_context(self) -> Any:
        """The job's KedroContext (its env and parameters), as its run makes one."""
        return self.service.load_context(self.runtime_params)

    def run(self, **arguments: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.service.run(
            run_id=self.run_id, runtime_params=self.runtime_params, **arguments
        )
        return result

    def __enter__(self) -> JobSession:
        if self.shared is not None:
            self.register(SharedConfigHook(self.shared))
        return self

    def __exit__(self, *_: object) -> None:
        # The service session outlives the run (inline isolation runs the next job with it).
        while self._hooks:
            self.service._hook_manager.unregister(self._hooks.pop())


def job_session(project_path: Path, request: RunRequest, plan: DataPlan) -> JobSession:
    """The Kedro session of one job's run: see JobSession."""
    service = service_session(project_path, request.options.env or None)
    return JobSession(service, request, plan, project_path)


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
        session.register(
            ProgressHook(events, checkpoints, done_before), DataPlanHook(plan, restored)
        )
        # A resumed segment runs the nodes left: a subset of what the filters select.
        arguments = run_arguments(request, nodes=resumed.remaining if resumed else None)
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
