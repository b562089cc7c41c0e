"""The one place that decides, for one run, what its progress means and when it must stop:
a cancel (the progress sink said so), the deadline, or too little time left for the next node
(continue in another invocation). Both isolation modes ask it."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from kedro_jobs.runner.types import (
    CANCELLED_MESSAGE,
    ProgressSink,
    RunProgress,
    StopRun,
    timeout_message,
)

CONTINUED_MESSAGE = "Too little time left for the next node: continuing in a new invocation"
# Before the first checkpoint of a job is measured, what saving one is expected to take.
CHECKPOINT_ALLOWANCE_SECONDS = 2.0
# A checkpoint that started before the deadline may run this far past it before the forked
# parent kills it: the consumer's deadline keeps 10 s before the real end of the invocation.
CHECKPOINT_GRACE_SECONDS = 6.0


@dataclass(frozen=True)
class ContinuePolicy:
    """When a run may stop at a node boundary to go on in another invocation."""

    allowed: bool = False
    estimates: dict[str, float] = field(default_factory=dict)  # seconds, by node name
    margin: float = 30.0  # the need of a node with no estimate and nothing seen yet
    seen: dict[str, float] = field(default_factory=dict)  # durations of earlier segments
    # What saving the checkpoint is expected to take (the last one's measure, with room).
    checkpoint_allowance: float = CHECKPOINT_ALLOWANCE_SECONDS


# Progress is written at each node boundary (the write also reads the cancel flag), but a
# forked run may hold a boundary's report back when a write read the job's cancel flag less
# than REPORT_QUIET_SECONDS ago (its claim, a progress write, a heartbeat) and the node after
# it is expected to be quick (it took under QUICK_NODE_SECONDS when the pipeline last ran):
# the run goes on at once, and the report is written only if that node is still running a
# moment later (forked.py). Never after a node that itself ran QUICK_NODE_SECONDS or more. A
# sub-second job then makes no progress write; a cancel is seen at the first boundary that
# writes: the end of any node that ran long (a cancel asked while it ran), else at most
# REPORT_QUIET_SECONDS of quick nodes later, and never past a node expected to be long.
REPORT_QUIET_SECONDS = 1.0
QUICK_NODE_SECONDS = 0.25

# The runs of this process, so a host that is stopping (make dev's Ctrl-C) can hand them back.
_RUNNING: weakref.WeakSet[RunControl] = weakref.WeakSet()
HAND_BACK_GRACE_SECONDS = 3.0
# When the host's stop was asked (monotonic) and the grace it gave: a run that starts after it
# (its job claimed as the stop came) is handed back as those already running are.
_STOPPING: tuple[float, float] | None = None


def hand_back_running(grace: float = HAND_BACK_GRACE_SECONDS) -> int:
    """The process is stopping: each run here stops at its next node boundary, saving a
    checkpoint there (status "continued"), or, if its node is still running ``grace`` seconds
    from now, is stopped ("timed_out", ``handing_back`` set) and the job goes on from its last
    checkpoint; so is one that starts later. Called from a signal handler: only sets
    attributes. Returns how many runs."""
    global _STOPPING
    _STOPPING = (time.monotonic(), grace)
    controls = list(_RUNNING)
    for control in controls:
        control.hand_back(grace)
    return len(controls)


class RunControl:
    def __init__(
        self,
        sink: ProgressSink,
        deadline: float,
        heartbeat: Callable[[], bool] | None = None,
        policy: ContinuePolicy | None = None,
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
        self.policy = policy or ContinuePolicy()
        self.durations: dict[str, float] = {}  # the nodes of this segment, as they finish
        self.last_node_seconds: float | None = None  # the node that ended last, this run
        self.checkpoint_started: float | None = None  # monotonic, once a save has begun
        self.handing_back = False  # the host is stopping: see hand_back_running
        # When the sink last heard of the run (the claim that started it read no cancel).
        self.reported = self.started
        _RUNNING.add(self)
        if _STOPPING is not None:
            asked, grace = _STOPPING
            self.hand_back(max(0.0, asked + grace - time.monotonic()))

    def hand_back(self, grace: float) -> None:
        self.handing_back = True
        self.deadline = min(self.deadline, time.monotonic() + grace)

    def note(self, completed: int, total: int, current: str | None) -> None:
        """Record where the run is, without telling the sink (yet)."""
        self.progress = RunProgress(completed, total, current)

    def report(self, completed: int, total: int, current: str | None) -> bool:
        """Record and tell the sink; True when the run must stop at this boundary."""
        self.note(completed, total, current)
        self.reported = time.monotonic()
        if self.sink(completed, total, current):
            self.cancelled = True
        return self.beat()

    def may_hold(self) -> bool:
        """May this boundary's report be held back (see REPORT_QUIET_SECONDS)? Only for a
        sink that keeps what it is told meanwhile (``held``), never once a stop is known."""
        upcoming = self.progress.current
        if getattr(self.sink, "held", None) is None or upcoming is None:
            return False
        if self.cancelled or self.handing_back or self.should_continue():
            return False
        # Since a write last read the cancel flag, as the sink knows it (the claim, a progress
        # write or a heartbeat, not one that failed), else since this run's last report.
        read_at = getattr(self.sink, "read_at", None)
        last = self.reported if read_at is None else read_at
        if time.monotonic() - last >= REPORT_QUIET_SECONDS:
            return False
        # A node that ran long has its boundary written: a cancel asked while it ran is seen
        # there, as it always was.
        if self.last_node_seconds is None or self.last_node_seconds >= QUICK_NODE_SECONDS:
            return False
        estimate = self.policy.estimates.get(upcoming)
        return estimate is not None and estimate < QUICK_NODE_SECONDS

    def hold(self, completed: int, total: int, current: str | None) -> None:
        """Record where the run is and tell the sink without a write (see may_hold)."""
        self.note(completed, total, current)
        self.sink.held(completed, total, current)  # type: ignore[attr-defined]

    def beat(self) -> bool:
        """Keep the claim alive (the forked parent calls this at least once a second, both
        modes at each node boundary); True when the run must stop at the next boundary."""
        if self.heartbeat is not None and not self.cancelled and not self.heartbeat():
            self.cancelled = True
        return self.cancelled

    def node_done(self, name: str, seconds: float) -> None:
        self.durations[name] = seconds
        self.last_node_seconds = seconds
        # A sink that keeps a node timeline learns of each node's end before the progress
        # report that follows it (the same write records both).
        on_node = getattr(self.sink, "node_finished", None)
        if on_node is not None:
            on_node(name, seconds)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def kill_remaining(self) -> float:
        """Time left before the work must be killed: the deadline, or a bounded grace past
        it for a checkpoint begun before it (killing that would lose the whole segment)."""
        started = self.checkpoint_started
        if started is not None and started < self.deadline:
            return self.deadline + CHECKPOINT_GRACE_SECONDS - time.monotonic()
        return self.remaining()

    def expected(self, node: str) -> float:
        """What ``node`` is expected to need: the longer of its estimate (its duration when
        the pipeline last ran) and the longest node seen in this job, else the margin. The
        estimate alone may come from a run with other parameters (a quick run's 0 s for a
        node this job's parameters make long): trusting it would start a node the
        invocation cannot finish, cut it off and run it again elsewhere."""
        seen = [*self.policy.seen.values(), *self.durations.values()]
        if node in self.policy.estimates:
            return max([self.policy.estimates[node], *seen])
        return max(seen) if seen else self.policy.margin

    def should_continue(self) -> bool:
        """Stop here and checkpoint? Never before this segment has run a node: a node longer
        than an invocation would otherwise start over forever."""
        upcoming = self.progress.current
        if self.handing_back:  # at once, even before this segment's first node
            return self.policy.allowed and upcoming is not None
        if not self.policy.allowed or not self.durations or upcoming is None:
            return False
        need = self.expected(upcoming) + self.policy.checkpoint_allowance
        return self.remaining() < need

    def stop_reason(self) -> StopRun | None:
        """Asked at each node boundary: why the run must end there, if it must."""
        if self.cancelled:
            return StopRun("cancelled", CANCELLED_MESSAGE)
        if self.should_continue():
            return StopRun("continued", CONTINUED_MESSAGE)
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
