"""The one place that decides, for one run, what its progress means and when it must stop:
a cancel (the progress sink said so) or the deadline. Both isolation modes ask it."""

from __future__ import annotations

import time
from collections.abc import Callable

from kedro_jobs.runner.types import (
    CANCELLED_MESSAGE,
    ProgressSink,
    RunProgress,
    StopRun,
    timeout_message,
)


class RunControl:
    def __init__(
        self,
        sink: ProgressSink,
        deadline: float,
        heartbeat: Callable[[], bool] | None = None,
    ) -> None:
        """``deadline`` is a time.monotonic() value. ``heartbeat`` (by default the sink's own
        ``heartbeat`` method, if it has one) is called often while the job runs, so the
        caller can keep its claim alive; it returns False when the run must stop (the job
        was taken over, or a cancel was asked). The caller decides how often it writes."""
        self.sink = sink
        self.heartbeat: Callable[[], bool] | None = (
            heartbeat if heartbeat is not None else getattr(sink, "heartbeat", None)
        )
        self.deadline = deadline
        self.started = time.monotonic()
        self.progress = RunProgress()
        self.cancelled = False

    def note(self, completed: int, total: int, current: str | None) -> None:
        """Record where the run is, without telling the sink (yet)."""
        self.progress = RunProgress(completed, total, current)

    def report(self, completed: int, total: int, current: str | None) -> bool:
        """Record and tell the sink; True when the run must stop at this boundary."""
        self.note(completed, total, current)
        if self.sink(completed, total, current):
            self.cancelled = True
        return self.beat()

    def beat(self) -> bool:
        """Keep the claim alive (the forked parent calls this at least once a second, both
        modes at each node boundary); True when the run must stop at the next boundary."""
        if self.heartbeat is not None and not self.cancelled and not self.heartbeat():
            self.cancelled = True
        return self.cancelled

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def stop_reason(self) -> StopRun | None:
        """Asked at each node boundary: why the run must end there, if it must."""
        if self.cancelled:
            return StopRun("cancelled", CANCELLED_MESSAGE)
        if self.remaining() <= 0:
            return self.timed_out()
        return None

    def timed_out(self) -> StopRun:
        return StopRun("timed_out", timeout_message(self.deadline - self.started))

    def final_progress(self, status: str) -> RunProgress:
        """What the job record shows at the end: every node on success; on a cancel nothing
        is running; otherwise the node that failed or was running."""
        done = self.progress
        if status == "completed":
            return RunProgress(done.total, done.total, None)
        if status == "cancelled":
            return RunProgress(done.completed, done.total, None)
        return done
