"""How a run ends, and what becomes of its job: the one decision (pure; no Kedro, no AWS).

Two steps of one table. ``settle``: the run's own status once its attempt is over (the
attempt's status, unless its outputs could not be committed or it stopped to continue
without a checkpoint). ``verdict``: what the consumer does with the job after that run: end
it (completed, failed or cancelled, with its error message), continue it in another
segment, hand it back (the host is stopping), or move it to other compute (a node outlived
the invocation). The runner calls the first, the consumer (segments, fanned-out jobs) the
second; nowhere else maps a run's status to a job's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kedro_jobs.runner.types import CANCELLED_MESSAGE, RunOutcome, Status

NO_CHECKPOINT_MESSAGE = "The run stopped without a checkpoint"

Next = Literal["end", "continue", "hand_back", "move"]
JobEnd = Literal["completed", "failed", "cancelled"]


@dataclass(frozen=True)
class Settled:
    status: Status
    error: str | None
    handed_back: bool = False  # "timed_out" because the host is stopping, not for its time


def settle(
    status: Status,
    error: str | None,
    *,
    checkpoint: str | None = None,
    commit_error: str | None = None,
    handing_back: bool = False,
) -> Settled:
    """The run's status from how its attempt ended (``status``, ``error``): a completed run
    whose outputs could not be committed (``commit_error``) failed; a run that stopped to
    continue but saved no checkpoint cannot go on: it failed."""
    if status == "completed" and commit_error is not None:
        return Settled("failed", commit_error)
    if status == "continued" and checkpoint is None:
        return Settled("failed", NO_CHECKPOINT_MESSAGE)
    return Settled(status, error, handed_back=handing_back and status == "timed_out")


@dataclass(frozen=True)
class Verdict:
    next: Next
    segment: str  # how the segment ended, as the job's record lists it
    status: JobEnd | None = None  # next "end": the job's final status
    error: str | None = None  # next "end": the job's error message


def verdict(
    outcome: RunOutcome, *, may_move: bool = False, over_limit: str | None = None
) -> Verdict:
    """What becomes of the job after ``outcome``. ``may_move``: a run out of time may go on
    on other compute (from the checkpoint it went on from). ``over_limit``: the job's own
    time limit bound this run, and this says so (a run out of time then fails with it)."""
    status = outcome.status
    if outcome.handed_back:
        return Verdict("hand_back", "handed_back")
    if status == "timed_out":
        if over_limit is not None:
            return Verdict("end", "failed", "failed", over_limit)
        if may_move:
            return Verdict("move", "timed_out")
        return Verdict("end", "failed", "failed", outcome.error_message)
    if status == "continued":
        if outcome.checkpoint is not None:
            return Verdict("continue", "continued")
        return Verdict("end", "failed", "failed", NO_CHECKPOINT_MESSAGE)
    if status == "cancelled":
        return Verdict("end", "cancelled", "cancelled", outcome.error_message or CANCELLED_MESSAGE)
    if status == "completed":
        return Verdict("end", "completed", "completed")
    return Verdict("end", "failed", "failed", outcome.error_message)
