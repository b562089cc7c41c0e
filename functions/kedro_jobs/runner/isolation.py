"""What both isolation modes share: how one attempt at the work ends, and the inline mode.

Inline runs the job in the consumer's own process (for places that cannot fork); a deadline
can then only be enforced between nodes. The fork mode (forked.py) runs the same attempt in a
child process and is the default. Either returns an :class:`Ended`: how the attempt itself
ended (the status a StopRun carried, "failed" for the pipeline's error, else "completed");
ending.settle then decides the run's status, once.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kedro_jobs.runner.control import RunControl
from kedro_jobs.runner.data import StagedOutput
from kedro_jobs.runner.hooks import RunEvents
from kedro_jobs.runner.log import collect_logs, joined, log_line
from kedro_jobs.runner.session import Executed
from kedro_jobs.runner.types import RunProgress, Status, StopRun, error_message

Work = Callable[[RunEvents], Executed]
"""Runs the pipeline with a hook reporting to the given events; raises the pipeline's error or
StopRun."""


@dataclass
class Ended:
    status: Status
    error: str | None = None
    results: dict[str, Any] | None = None
    staged: list[StagedOutput] = field(default_factory=list)
    log: str = ""
    checkpoint: str | None = None  # status "continued": where it was saved
    checkpoint_seconds: float | None = None

    def to_event(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "error": self.error,
            "results": self.results,
            "staged": [item.to_dict() for item in self.staged],
            "checkpoint": self.checkpoint,
            "checkpoint_seconds": self.checkpoint_seconds,
        }

    @classmethod
    def from_event(cls, event: dict[str, Any], log: str) -> Ended:
        staged = [StagedOutput(**item) for item in event.get("staged") or []]
        return cls(
            event["status"],
            event.get("error"),
            event.get("results"),
            staged,
            log,
            event.get("checkpoint"),
            event.get("checkpoint_seconds"),
        )


def attempt(work: Work, events: RunEvents, where: Callable[[], RunProgress],
            log: Callable[[str], None]) -> Ended:  # fmt: skip
    try:
        executed = work(events)
    except StopRun as stop:
        if stop.status == "continued":  # not an error: the job goes on elsewhere
            log(log_line("INFO", "kedro_jobs", f"{stop} (checkpoint: {stop.checkpoint})"))
            return Ended(
                "continued", checkpoint=stop.checkpoint, checkpoint_seconds=stop.checkpoint_seconds
            )
        log(log_line("WARNING", "kedro_jobs", str(stop)))
        return Ended(stop.status, str(stop))
    except Exception as error:  # the pipeline's own error: it fails the job
        log(log_line("ERROR", "kedro_jobs", traceback.format_exc()))
        return Ended("failed", error_message(error, where().current))
    return Ended(
        "completed",
        results=executed.results,
        staged=executed.staged,
        checkpoint_seconds=executed.checkpoint_seconds,
    )


class _InlineEvents:
    """RunEvents in the calling process: the control is asked directly."""

    def __init__(self, control: RunControl) -> None:
        self.control = control

    def started(self, completed: int, total: int, first: str | None) -> None:
        self.control.report(completed, total, first)

    def node_finished(
        self, completed: int, total: int, upcoming: str | None, node: str, seconds: float
    ) -> None:
        self.control.node_done(node, seconds)
        self.control.report(completed, total, upcoming)

    def stop_reason(self) -> StopRun | None:
        return self.control.stop_reason()

    def checkpointing(self) -> None:
        self.control.checkpoint_started = time.monotonic()


def run_inline(work: Work, control: RunControl) -> Ended:
    lines: list[str] = []
    with collect_logs(lines.append):
        ended = attempt(work, _InlineEvents(control), lambda: control.progress, lines.append)
    ended.log = joined(lines)
    return ended
