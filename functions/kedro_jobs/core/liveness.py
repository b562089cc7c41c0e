"""Is anyone working on a job? The one rule that tells a job held by a live consumer, one
waiting its turn behind others on the queue, one whose worker is gone, and one that nobody
takes at all. Pure: the job, the time, what is known of the queue and the settings in, an
action out. The claim, the sweeper, a cancel and the dead-letter function all ask it.

Waiting is not lost. A pending job whose message sits on a queue that a consumer is taking
from (some run's lease is live: its consumer heartbeats) only waits its turn, however long the
backlog; its message is sent again only when the queue holds fewer messages than there are
jobs to take (one was lost), at most as many as are missing, so a backlog never multiplies
messages. A pending job is failed only after MAX_ATTEMPTS looks SWEEP_AFTER_SECONDS apart in
which no consumer was working at all.

The store's writes that act on the answer re-check it atomically in their conditions (a
lease still expired, the same attempt: ``store/runs.py`` ``abandoned``, ``Fence``), so a
heartbeat or a claim between the read and the write wins.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from kedro_jobs.core.fanout import TASK_HEARTBEAT_SECONDS
from kedro_jobs.core.models import Job
from kedro_jobs.core.settings import Settings
from kedro_jobs.core.states import JobStatus


@dataclass(frozen=True)
class Limits:
    """The settings the rule reads (MAX_ATTEMPTS, SWEEP_AFTER_SECONDS)."""

    max_attempts: int
    sweep_after_seconds: int = 180

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.max_attempts, settings.sweep_after_seconds)


class Action(StrEnum):
    FINISHED = "finished"  # terminal: nothing to do
    HELD = "held"  # running under a live lease: its consumer is alive
    CLAIM = "claim"  # pending: the next delivery may take it
    CONTINUE = "continue"  # between two segments: the next segment's claim takes it
    TAKE_OVER = "take_over"  # its worker is gone (lease expired): claim it again / send it again
    CANCEL = "cancel"  # no live worker and a cancel asked: it ends cancelled
    EXHAUSTED = "exhausted"  # its worker died on the last allowed attempt: it ends failed
    # Only for the sweeper's look at a pending job:
    YOUNG = "young"  # not yet SWEEP_AFTER_SECONDS since it was queued or last looked at
    WAITING = "waiting"  # behind others on a queue a consumer takes from: leave it be
    RESEND = "resend"  # its message is missing from the queue: send it again
    UNTAKEN = "untaken"  # nobody takes messages: note one more look without a consumer
    LOST = "lost"  # MAX_ATTEMPTS looks without any consumer: it ends failed


@dataclass(frozen=True)
class QueueFacts:
    """What the sweeper knows of the queue and its consumers at one sweep."""

    waiting: int  # ApproximateNumberOfMessages: visible, not taken yet
    in_flight: int  # ApproximateNumberOfMessagesNotVisible: taken, not deleted yet
    pending_jobs: int  # live pending jobs (the sweep index)
    live_runs: int  # running jobs whose lease is live: their consumer heartbeats

    @property
    def consumer_alive(self) -> bool:
        return self.live_runs > 0

    @property
    def missing_messages(self) -> int:
        """Jobs to take (pending, and the runs whose message is still in flight) that no
        message on the queue accounts for: at most this many messages were lost. With no
        consumer working, a message in flight is one a consumer took and died holding: it
        stays invisible for the visibility timeout (5400 s at the defaults), so it counts
        as lost."""
        if not self.consumer_alive:
            return max(0, self.pending_jobs - self.waiting)
        return max(0, self.pending_jobs + self.live_runs - self.waiting - self.in_flight)

    def after_send(self) -> QueueFacts:
        """The facts once one more message is on the queue."""
        return replace(self, waiting=self.waiting + 1)


def held(job: Job, now: float) -> bool:
    """A consumer holds the running job: its lease is live and it did not hand it off."""
    return (
        job.status is JobStatus.RUNNING
        and not job.handed_off
        and (job.lease_expires_at or 0.0) > now
    )


def dead_groups(job: Job, now: float) -> list[str]:
    """The groups of a fanned-out job that run under an expired lease: their worker died."""
    return [
        group_id
        for group_id, group in (job.groups or {}).items()
        if group.status == "running" and (group.lease or 0.0) <= now
    ]


def coordinated(job: Job, now: float) -> bool:
    """A fanned-out job between its groups: none runs under a dead worker, and the next is on
    its way from the state machine (sent, or waiting on the queue behind other jobs). Nothing
    works on it in the meantime, so its lease runs out; that is not a worker lost. Bounded by
    the state machine's own limit: a task without an answer or a heartbeat for
    TASK_HEARTBEAT_SECONDS fails the execution, whose discard ends the job; one still running
    after that is taken over (and in the end failed) as any job."""
    if job.fan_out is None or not job.groups or dead_groups(job, now):
        return False
    return (job.lease_expires_at or 0.0) + TASK_HEARTBEAT_SECONDS > now


def decide(
    job: Job,
    now: float,
    settings: Limits,
    *,
    facts: QueueFacts | None = None,
    looked_at: float | None = None,
    looks: int = 0,
) -> Action:
    """What becomes of ``job`` at ``now``.

    For a running or finished job only the job matters. For a pending job without ``facts``
    (a delivery's claim) the answer is CLAIM; the sweeper passes ``facts``, ``looked_at``
    (when the job was queued or last looked at: its ``sweep_due``) and ``looks`` (how many
    looks found nobody taking messages)."""
    if job.status.terminal:
        return Action.FINISHED
    if job.status is JobStatus.RUNNING:
        if held(job, now):
            return Action.HELD
        if job.cancel_requested:
            return Action.CANCEL
        if coordinated(job, now):
            return Action.HELD
        if job.handed_off:
            # Its last segment let go: the next segment's claim takes it (the sweeper sends
            # it again once the hand-off's grace ran out). Not an attempt lost to a crash.
            return Action.CONTINUE
        if job.crashed_attempts >= settings.max_attempts:
            return Action.EXHAUSTED
        return Action.TAKE_OVER
    if facts is None:
        return Action.CLAIM
    since = job.created_at.timestamp() if looked_at is None else looked_at
    if now - since < settings.sweep_after_seconds:
        return Action.YOUNG
    if facts.consumer_alive:
        return Action.RESEND if facts.missing_messages else Action.WAITING
    if looks >= settings.max_attempts:
        return Action.LOST
    return Action.RESEND if facts.missing_messages else Action.UNTAKEN


def lost_message(looks: int, after: int) -> str:
    """Why a pending job that nobody took is failed."""
    return (
        f"Job failed: no consumer took it; no consumer was taking jobs at any of {looks + 1} "
        f"looks at least {after} s apart, and its message was on the queue. Check that the "
        "consumer is deployed and running, then retry the job."
    )
