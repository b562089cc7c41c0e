"""Run a Kedro pipeline in-process with Kedro's Python API (no `kedro run` subprocess).

The project is bootstrapped once per container (settings, pipeline registry, one unrun
session to import the rest of Kedro). Each job gets a fresh KedroSession (~20 ms) with a
hook that reports progress and stops the run at a node boundary. Isolation "fork" (the
default) runs each job in a child forked from this warm process (see fork_worker); "inline"
runs it here, for places that cannot fork, and checks the deadline between nodes only.

Measured by `make bench` (2 shared cores; `hello`, 2 nodes; warm; no-op progress sink):
    inline ~20-25 ms a job     fork ~36-42 ms a job: the fork adds ~17 ms (~6 ms the fork
    itself, ~10 ms the child's copy-on-write page faults while it builds its session; its
    exit is reaped off the job's path)
    cold start: import + bootstrap + warm-up session ~1.1-1.3 s (first job then as above)
Without kedro_project.speed_up_sessions (Kedro's per-session git calls, entry-point scan,
failed `import ibis`, the pipeline registry re-read by every forked child) a job took
~10-30 ms more.
"""

from __future__ import annotations

import gc
import logging
import os
import time
import traceback
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kedro_jobs.consumer.kedro_project import (
    bootstrap,
    ensure_configured,
    project_path_from_env,
    speed_up_sessions,
    warm_up,
)
from kedro_jobs.consumer.results import to_json_safe
from kedro_jobs.consumer.run_log import collect_logs, joined, log_line
from kedro_jobs.consumer.run_types import (
    CANCELLED_MESSAGE,
    ProgressSink,
    RunOutcome,
    RunRequest,
    Status,
    StopRun,
    error_message,
    timeout_message,
)

if TYPE_CHECKING:
    from kedro_jobs.consumer.progress_hook import RunEvents

# Kedro is imported only below this module (lazily). Before it is: no telemetry (it calls the
# network), console-only logging (Lambda's disk is read-only but /tmp).
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("KEDRO_LOGGING_CONFIG", str(Path(__file__).with_name("kedro_logging.yml")))

__all__ = [
    "KedroRunner",
    "ProgressSink",
    "RunOutcome",
    "RunRequest",
    "Status",
    "project_path_from_env",
]

logger = logging.getLogger(__name__)
# Kedro's own use of OmegaConf warns on every session; it says nothing about the user's job.
warnings.filterwarnings("ignore", message="register_new_resolver", category=UserWarning)

_FILTERS = ("tags", "node_names", "from_nodes", "to_nodes", "from_inputs", "to_outputs")


class KedroRunner:
    def __init__(
        self, project_path: Path, *, isolation: Literal["fork", "inline"] = "fork"
    ) -> None:
        self.project_path = Path(project_path).resolve()
        self.isolation = isolation
        started = time.perf_counter()
        # Bootstrapping allocates much and frees little: no collections meanwhile (each
        # would walk the growing heap); one at the end, then the heap is frozen (below).
        gc.disable()
        try:
            self.package_name = bootstrap(self.project_path)
            speed_up_sessions()
            from kedro.framework.project import pipelines

            # Load the registry now, so every forked child starts with it in memory.
            self._pipelines: dict[str, Any] = dict(pipelines.items())
            warm_up(self.project_path)
            # All this lives as long as the container: out of the collector's sight
            # (gc.freeze), a full collection walks only what jobs allocate since. Without
            # it one took ~150 ms here, every few inline jobs.
            gc.collect()
            gc.freeze()
        finally:
            gc.enable()
        logger.info(
            "Kedro project %s bootstrapped in %.0f ms: pipelines %s",
            self.package_name,
            (time.perf_counter() - started) * 1000,
            ", ".join(self.pipeline_names),
        )

    @property
    def pipeline_names(self) -> list[str]:
        return sorted(self._pipelines)

    def manifest(self) -> dict[str, Any]:
        from kedro_jobs.consumer.manifest import build_manifest

        return build_manifest(self.package_name, self._pipelines)

    def run(
        self,
        request: RunRequest,
        progress: ProgressSink,
        *,
        deadline: float,
    ) -> RunOutcome:
        """Run one job; past ``deadline`` (a time.monotonic() value) it is stopped."""
        if request.pipeline_name not in self._pipelines:
            known = ", ".join(self.pipeline_names)
            message = f"Unknown pipeline {request.pipeline_name!r}. Known pipelines: {known}"
            log = log_line("ERROR", "kedro_jobs", message) + "\n"
            return RunOutcome("failed", None, message, None, log, 0.0)
        ensure_configured(self.package_name)
        if self.isolation == "inline":
            return self._run_inline(request, progress, deadline)
        from kedro_jobs.consumer.fork_worker import run_forked

        return run_forked(lambda events: self._execute(request, events), progress, deadline)

    def _execute(self, request: RunRequest, events: RunEvents) -> dict[str, Any]:
        """Run the pipeline in this process; returns the JSON-safe free outputs. Raises the
        pipeline's error or StopRun."""
        from kedro.framework.session import KedroSession
        from kedro.runner import SequentialRunner

        from kedro_jobs.consumer.progress_hook import ProgressHook

        options = request.options
        logger.info("Job %s: pipeline %s", request.job_id, request.pipeline_name)
        session = KedroSession.create(
            project_path=self.project_path,
            env=options.get("env") or None,
            runtime_params=request.parameters or None,
            save_on_close=False,
        )
        with session:
            # Kedro has no public way to add a hook to one session; its manager is per session.
            session._hook_manager.register(ProgressHook(events))
            filters = {k: options[k] for k in _FILTERS if options.get(k)}
            outputs = session.run(
                pipeline_names=[request.pipeline_name],
                runner=SequentialRunner(),
                namespaces=options.get("namespaces") or None,
                load_versions=options.get("load_versions") or None,
                **filters,
            )
        # Kedro 1.x returns the free outputs' values; older versions returned datasets.
        return {
            name: to_json_safe(value.load() if hasattr(value, "load") else value)
            for name, value in outputs.items()
        }

    def _run_inline(
        self, request: RunRequest, progress: ProgressSink, deadline: float
    ) -> RunOutcome:
        started = time.monotonic()
        lines: list[str] = []
        events = _InlineEvents(progress, deadline, started)

        def outcome(status: Status, results: Any = None, error: str | None = None,
                    node: str | None = None) -> RunOutcome:  # fmt: skip
            return RunOutcome(
                status, results, error, node, joined(lines), time.monotonic() - started
            )

        try:
            with collect_logs(lines.append):
                results = self._execute(request, events)
        except StopRun as stop:
            lines.append(log_line("WARNING", "kedro_jobs", str(stop)))
            return outcome(stop.status, error=str(stop))
        except Exception as error:  # the pipeline's own error: it fails the job
            lines.append(log_line("ERROR", "kedro_jobs", traceback.format_exc()))
            node = events.failed_node
            return outcome("failed", error=error_message(error, node), node=node)
        return outcome("completed", results)


class _InlineEvents:
    """RunEvents in the calling process: the progress sink is called directly."""

    def __init__(self, progress: ProgressSink, deadline: float, started: float) -> None:
        self.progress = progress
        self.deadline = deadline
        self.began = started
        self.cancel = False
        self.failed_node: str | None = None

    def started(self, total: int, first: str | None) -> None:
        self.cancel = bool(self.progress(0, total, first))

    def node_finished(self, completed: int, total: int, upcoming: str | None) -> None:
        self.cancel = bool(self.progress(completed, total, upcoming)) or self.cancel

    def node_failed(self, node: str) -> None:
        self.failed_node = node

    def stop_reason(self) -> StopRun | None:
        if self.cancel:
            return StopRun("cancelled", CANCELLED_MESSAGE)
        if time.monotonic() > self.deadline:
            return StopRun("timed_out", timeout_message(self.deadline - self.began))
        return None
