"""The one place that decides, for one run, what its progress means and when it must stop:
a cancel (the progress sink said so) or the deadline. Both isolation modes ask it."""

from __future__ import annotations

import time

from kedro_jobs.runner.types import (
    CANCELLED_MESSAGE,
    ProgressSink,
    RunProgress,
    StopRun,
    timeout_message,
)


class RunControl:
    def __init__(self, sink: ProgressSink, deadline: float) -> None:
        """``deadline`` is a time.monotonic() value."""
        self.sink = sink
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
