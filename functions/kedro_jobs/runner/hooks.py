"""A Kedro hook that reports the run's progress and stops it at a node boundary.

Progress is reported after each node (``after_node_run``); the decision to stop is acted on
in ``before_node_run`` of the next node, so a stopped node has saved its outputs and a
decision taken after the last node changes nothing (the job has finished).
"""

from __future__ import annotations

from typing import Any, Protocol

from kedro.framework.hooks import hook_impl

from kedro_jobs.consumer.run_types import StopRun


class RunEvents(Protocol):
    """What the hook tells the runner (inline) or the forked child's pipe (fork)."""

    def started(self, total: int, first: str | None) -> None: ...

    def node_finished(self, completed: int, total: int, upcoming: str | None) -> None: ...

    def node_failed(self, node: str) -> None: ...

    def stop_reason(self) -> StopRun | None:
        """Asked before each node: a StopRun to end the run there, or None to go on."""
        ...


class ProgressHook:
    def __init__(self, events: RunEvents) -> None:
        self.events = events
        self.order: list[str] = []
        self.completed = 0

    @hook_impl
    def before_pipeline_run(self, pipeline: Any) -> None:
        # The pipeline here is the one left after the run options' filters.
        self.order = [node.name for node in pipeline.nodes]
        self.events.started(len(self.order), self.order[0] if self.order else None)

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        stop = self.events.stop_reason()
        if stop is not None:
            raise stop

    @hook_impl
    def after_node_run(self, node: Any) -> None:
        self.completed += 1
        total = len(self.order)
        upcoming = self.order[self.completed] if self.completed < total else None
        self.events.node_finished(self.completed, total, upcoming)

    @hook_impl
    def on_node_error(self, node: Any) -> None:
        self.events.node_failed(node.name)
