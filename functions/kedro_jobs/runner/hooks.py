"""The Kedro hooks one job's session runs with: progress and stops at node boundaries, and the
job's own data plan applied to the catalog before the first node.

A node counts as finished once its outputs are saved (``after_node_run`` fires before the
saves, so a node whose save fails is not counted). The decision to stop is acted on in
``before_node_run`` of the next node, so a stopped node has saved its outputs and a decision
taken after the last node changes nothing (the job has finished). A stop to continue in
another invocation saves the checkpoint there, while the catalog still holds every value.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from kedro.framework.hooks import hook_impl
from kedro.framework.hooks.markers import HOOK_NAMESPACE

from kedro_jobs.runner.checkpoint import Checkpointer
from kedro_jobs.runner.data import DataPlan
from kedro_jobs.runner.types import StopRun

logger = logging.getLogger(__name__)


class RunEvents(Protocol):
    """What the hook tells the isolation mode (the control inline, the parent's pipe in a
    fork)."""

    def started(self, completed: int, total: int, first: str | None) -> None:
        """The run begins, ``completed`` nodes done by earlier segments of the job."""
        ...

    def node_finished(
        self, completed: int, total: int, upcoming: str | None, node: str, seconds: float
    ) -> None:
        """``node`` finished (its outputs saved) after ``seconds``."""
        ...

    def stop_reason(self) -> StopRun | None:
        """Asked before each node: a StopRun to end the run there, or None to go on."""
        ...

    def checkpointing(self) -> None:
        """A checkpoint is being saved (the deadline may not kill it at once)."""
        ...


class JobHooks:
    """A job's own hooks, registered for each run: shown to Kedro's hook manager as their
    hook implementations only. The manager looks statically (inspect.getattr_static) at
    every name ``dir()`` gives when a plugin is registered: ~35 of an object, ~0.7 ms a job
    here for its three hooks (in a forked child, more: each look copies pages)."""

    def __dir__(self) -> list[str]:
        kind = type(self)
        names = _HOOK_NAMES.get(kind)
        if names is None:
            marker = f"{HOOK_NAMESPACE}_impl"
            names = [name for name in dir(kind) if hasattr(getattr(kind, name, None), marker)]
            _HOOK_NAMES[kind] = names
        return names


_HOOK_NAMES: dict[type, list[str]] = {}


class ProgressHook(JobHooks):
    def __init__(
        self, events: RunEvents, checkpoints: Checkpointer | None = None, done_before: int = 0
    ) -> None:
        """``done_before``: nodes earlier segments of the job ran; progress counts them."""
        self.events = events
        self.checkpoints = checkpoints
        self.done_before = done_before
        self.order: list[str] = []
        self.completed = 0
        self.unsaved: set[str] = set()
        self.pipeline: Any = None
        self.current = ""
        self.begun = False  # a node of this segment got past loading its inputs
        self.since = time.monotonic()  # a node's time runs from the end of the one before
        self.durations: dict[str, float] = {}

    @hook_impl
    def before_pipeline_run(self, pipeline: Any) -> None:
        # The pipeline here is the one left after the run options' filters; a sequential
        # run takes its nodes in this order.
        self.pipeline = pipeline
        self.order = [node.name for node in pipeline.nodes]
        total = self.done_before + len(self.order)
        self.since = time.monotonic()
        self.events.started(self.done_before, total, self.order[0] if self.order else None)

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any) -> None:
        stop = self.events.stop_reason()
        if stop is not None and stop.status == "continued" and self.checkpoints is not None:
            self.events.checkpointing()
            done = self.order[: self.completed]
            where = self.checkpoints.save(self.pipeline, catalog, done, self.durations)
            raise StopRun("continued", str(stop), where, self.checkpoints.seconds)
        if stop is not None:
            raise stop
        self.current = node.name
        self.begun = True

    @hook_impl
    def on_pipeline_error(self, error: Exception, catalog: Any) -> None:
        if not self.begun:
            # Nothing of this segment ran (an input missing, a dataset that cannot load): no
            # node is to blame, and none is shown running.
            total = self.done_before + len(self.order)
            self.events.started(self.done_before, total, None)
        self._keep_for_rerun(error, catalog)

    def _keep_for_rerun(self, error: Exception, catalog: Any) -> None:
        """The run fails, is cancelled or stopped at a boundary: what its remaining nodes
        need is saved as a checkpoint (the same as a continuation's, at the node boundary
        after the last node that completed), so a rerun from failure does not run the
        completed nodes again. Only if this segment completed a node (else the checkpoint it
        went on from, if any, is the one kept); a failed save leaves the job's own error."""
        if isinstance(error, StopRun) and error.status == "continued":
            return  # saved already
        if self.checkpoints is None or not self.completed:
            return
        self.events.checkpointing()
        done = self.order[: self.completed]
        try:
            self.checkpoints.save(self.pipeline, catalog, done, self.durations)
        except Exception as failed:  # the job's own error stands; it cannot rerun from here
            logger.warning("No checkpoint kept for a rerun from failure: %s", failed)

    @hook_impl
    def after_node_run(self, node: Any, outputs: dict[str, Any]) -> None:
        self.current = node.name
        self.unsaved = set(outputs)
        if not self.unsaved:
            self._finished()

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        if dataset_name in self.unsaved:
            self.unsaved.discard(dataset_name)
            if not self.unsaved:
                self._finished()

    def _finished(self) -> None:
        now = time.monotonic()
        seconds, self.since = now - self.since, now
        self.durations[self.current] = seconds
        self.completed += 1
        total = len(self.order)
        upcoming = self.order[self.completed] if self.completed < total else None
        self.events.node_finished(
            self.done_before + self.completed,
            self.done_before + total,
            upcoming,
            self.current,
            seconds,
        )


class DataPlanHook(JobHooks):
    """Applies the job's data plan to the catalog the run will use (after the run options'
    filters, so it knows exactly what the run reads and writes), and puts back the values an
    earlier segment of the job saved in its checkpoint."""

    def __init__(self, plan: DataPlan, restored: dict[str, Any] | None = None) -> None:
        self.plan = plan
        self.restored = restored or {}

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        from kedro.io import MemoryDataset

        self.plan.apply(pipeline, catalog, run_params.get("load_versions") or {})
        for name, value in self.restored.items():
            dataset = catalog.get(name, fallback_to_runtime_pattern=True)
            if isinstance(dataset, MemoryDataset):
                # As the node's save left it (its copy mode kept), without a second copy of
                # a value just unpickled.
                dataset._data = value
            else:
                catalog[name] = value
