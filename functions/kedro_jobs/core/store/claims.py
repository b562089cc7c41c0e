"""Claiming a job for a run: pending -> running, re-claiming a running job whose lease
expired (its consumer died), or the next segment's claim of a job handed off. The attempt
number a claim sets is the fencing token of the run's later writes (runs.py). And the one
write a delivery makes instead of a claim: failing the pending job an unreadable message
names."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kedro_jobs.core.errors import JobAlreadyExists
from kedro_jobs.core.liveness import Action, Limits, decide
from kedro_jobs.core.models import Job
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store.expressions import before, eq, moving
from kedro_jobs.core.store.fencing import NOT_CANCELLED, Abandoned
from kedro_jobs.core.store.items import from_item, status_change, sweep


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # this caller owns the run now
    BUSY = "busy"  # running under a live lease elsewhere
    FINISHED = "finished"  # already terminal (or cancelled)
    EXHAUSTED = "exhausted"  # lease expired too often: failed now
    FOREIGN = "foreign"  # another user's job: the message's sender could not have made it
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    job: Job | None


def claimed(user_id: str, attempt: int, lease_end: float, *, starting: bool) -> dict[str, Any]:
    """The claimed state, however it is written: running on ``attempt`` until ``lease_end``
    (``starting``: the job's first segment starts now)."""
    values = {
        **status_change(user_id, JobStatus.RUNNING),
        "attempts": attempt,
        "lease_expires_at": lease_end,
        "cancel_requested": False,
        **sweep(JobStatus.RUNNING, lease_end),
    }
    if starting:
        values["started_at"] = values["updated_at"]
    return values


class Claims(Abandoned):
    def claim(
        self,
        job_id: str,
        *,
        lease_seconds: float,
        max_attempts: int,
        user_id: str | None = None,
    ) -> Claim:
        """pending -> running, or re-claim a running job whose lease expired (its consumer
        died). The attempt number it sets is the fencing token for this run's later writes.

        With the job's ``user_id`` known (the message carries it), the usual case, a first
        claim of a pending job, is one conditional write with no read."""
        if user_id is not None:
            first = self._claim_pending(job_id, user_id, lease_seconds)
            if first is not None:
                return Claim(ClaimOutcome.CLAIMED, first)
        for _ in range(3):
            job = self.get(job_id)
            if job is None:
                return Claim(ClaimOutcome.NOT_FOUND, None)
            claim = self._claim_read(job, lease_seconds, max_attempts, user_id)
            if claim is not None:
                return claim
        job = self.get(job_id)
        return Claim(ClaimOutcome.BUSY if job else ClaimOutcome.NOT_FOUND, job)

    def _claim_read(
        self, job: Job, lease_seconds: float, max_attempts: int, user_id: str | None = None
    ) -> Claim | None:
        """What becomes of ``job`` as read: None if it changed since (read it again)."""
        if user_id is not None and job.user_id != user_id:
            # A message may only change a job its sender could have created.
            return Claim(ClaimOutcome.FOREIGN, job)
        now = time.time()
        action = decide(job, now, Limits(max_attempts))
        if action is Action.FINISHED:
            return Claim(ClaimOutcome.FINISHED, job)
        if action is Action.HELD:
            return Claim(ClaimOutcome.BUSY, job)
        if action is Action.CANCEL:  # asked while no consumer held it: it ends here
            cancelled = self._cancel_abandoned(job)
            return Claim(ClaimOutcome.FINISHED, cancelled) if cancelled else None
        if action is Action.EXHAUSTED:
            failed = self._fail_exhausted(job, max_attempts)
            return Claim(ClaimOutcome.EXHAUSTED, failed) if failed else None
        running = job.status is JobStatus.RUNNING
        # Its last segment saved a checkpoint and let go: the next one starts now.
        continuing = action is Action.CONTINUE
        # The attempt count we read is part of the condition: of two consumers that race
        # for one job, exactly one write succeeds.
        when = moving(job.status, JobStatus.RUNNING) & eq("attempts", job.attempts)
        if continuing:
            when = when & eq("handed_off", True) & NOT_CANCELLED
        elif running:
            # Taken over only while still abandoned: not if a heartbeat extended the lease,
            # or a cancel arrived, since the read.
            when = when & before("lease_expires_at", now) & NOT_CANCELLED
        values = claimed(
            job.user_id, job.attempts + 1, now + lease_seconds, starting=not continuing
        )
        if continuing:  # the job started with its first segment
            values.update({"handed_off": False, "continuations": job.continuations + 1})
        attrs = self._update(job.id, values, when, remove=("error_message",))
        return Claim(ClaimOutcome.CLAIMED, self._changed(from_item(attrs))) if attrs else None

    def _claim_pending(self, job_id: str, user_id: str, lease_seconds: float) -> Job | None:
        when = (
            moving(JobStatus.PENDING, JobStatus.RUNNING)
            & eq("user_id", user_id)
            & eq("attempts", 0)
        )
        values = claimed(user_id, 1, time.time() + lease_seconds, starting=True)
        attrs = self._update(job_id, values, when)
        return self._changed(from_item(attrs)) if attrs else None

    def create_claimed(self, job: Job, *, lease_seconds: float) -> Job | None:
        """A job first seen by the consumer (a message from another system): written already
        claimed by this run, attempt 1, in one conditional put. None if the job exists (a
        redelivery, or the API made it): then claim it as usual."""
        values = claimed(job.user_id, 1, time.time() + lease_seconds, starting=True)
        running = job.model_copy(
            update={name: value for name, value in values.items() if name in Job.model_fields}
        )
        try:
            self._put_new(running)
        except JobAlreadyExists:
            return None
        return self._changed(running)

    def fail_pending(self, job: Job, error_message: str) -> Job | None:
        """pending -> failed, only while still pending and still ``job``'s owner's (a job
        claimed since it was read is left to its run): a delivery's message that cannot be
        read fails the job it names instead of claiming it. None if it was not pending."""
        values = {**status_change(job.user_id, JobStatus.FAILED), "error_message": error_message}
        when = moving(JobStatus.PENDING, JobStatus.FAILED) & eq("user_id", job.user_id)
        attrs = self._update(job.id, values, when)
        return self._changed(from_item(attrs, lenient=True)) if attrs else None
