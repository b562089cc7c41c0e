"""The Kedro hooks one job's session runs with: progress and stops at node boundaries, and the
job's own data plan applied to the catalog before the first node.

A node counts as finished once its outputs are saved (``after_node_run`` fires before the
saves, so a node whose save fails is not counted). The decision to stop is acted on in
``before_node_run`` of the next node, so a stopped node has saved its outputs and a decision
taken after the last node changes nothing (the job has finished).
"""

from __future__ import annotations

from typing import Any, Protocol

from kedro.framework.hooks import hook_impl

from kedro_jobs.runner.data import DataPlan
from kedro_jobs.runner.types import StopRun


class RunEvents(Protocol):
    """What the hook tells the isolation mode (the control inline, the parent's pipe in a
    fork)."""

    def started(self, total: int, first: str | None) -> None: ...

    def node_finished(self, completed: int, total: int, upcoming: str | None) -> None: ...

    def stop_reason(self) -> StopRun | None:
        """Asked before each node: a StopRun to end the run there, or None to go on."""
        ...


class ProgressHook:
    def __init__(self, events: RunEvents) -> None:
        self.events = events
        self.order: list[str] = []
        self.completed = 0
        self.unsaved: set[str] = set()

    @hook_impl
    def before_pipeline_run(self, pipeline: Any) -> None:
        # The pipeline here is the one left after the run options' filters; a sequential
        # run takes its nodes in this order.
        self.order = [node.name for node in pipeline.nodes]
        self.events.started(len(self.order), self.order[0] if self.order else None)

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        stop = self.events.stop_reason()
        if stop is not None:
            raise stop

    @hook_impl
    def after_node_run(self, node: Any, outputs: dict[str, Any]) -> None:
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
        self.completed += 1
        total = len(self.order)
        upcoming = self.order[self.completed] if self.completed < total else None
        self.events.node_finished(self.completed, total, upcoming)


class DataPlanHook:
    """Applies the job's data plan to the catalog the run will use (after the run options'
    filters, so it knows exactly what the run reads and writes)."""

    def __init__(self, plan: DataPlan) -> None:
        self.plan = plan

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self.plan.apply(pipeline, catalog, run_params.get("load_versions") or {})
