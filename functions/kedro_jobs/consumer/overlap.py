"""A schedule's overlap policy, applied when a fire's message is delivered, before the job
is claimed (or dispatched to Fargate):

- ``allow`` (the default): the fire runs, whatever else of its schedule runs.
- ``skip``: while an earlier run of the schedule is running, the fire's job is recorded as
  cancelled, saying it was skipped and why, and runs nothing.
- ``queue``: while an earlier run is running, or an earlier fire waits, the fire's job stays
  pending and its message comes back every ``QUEUE_RECHECK_SECONDS``; the waiting fires
  then run one after another, oldest first.

The schedule's runs are read from the by-schedule index (a Query of its newest runs). Two
fires delivered in the same instant may both see nothing running: fires are at least a
minute apart, so the check is made when each is delivered, not under a lock.
"""

from __future__ import annotations

import time

from aws_lambda_powertools import Logger

from kedro_jobs.core.models import Job, iso, utcnow
from kedro_jobs.core.queue import JobQueue
from kedro_jobs.core.requests import JobMessage
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store.roles.schedules import ScheduleJobs

logger = Logger(service="kedro-jobs-consumer", child=True)

# How often a queued fire looks again whether the runs before it have ended.
QUEUE_RECHECK_SECONDS = 30
# How many of the schedule's newest runs are looked at (runs older than these have ended, or
# the sweeper ends them).
RUNS_LOOKED_AT = 25


def skipped_message(schedule: str, running: str) -> str:
    return (
        f"Skipped: run {running} of schedule {schedule!r} was still running when this fire "
        "came (overlap: skip)"
    )


class OverlapPolicy:
    def __init__(self, store: ScheduleJobs, queue: JobQueue) -> None:
        self.store = store
        self.queue = queue

    def admit(self, job_id: str, message: JobMessage, body: str) -> bool:
        """True: the fire runs now (claimed as any delivery). False: it was skipped, or it
        waits (its message sent again with a delay), and this delivery is done."""
        if message.schedule is None or message.overlap in (None, "allow"):
            return True
        user = message.user_id or "anonymous"
        runs = self.store.schedule_runs(user, message.schedule, limit=RUNS_LOOKED_AT)
        mine = next((run for run in runs if run.id == job_id), None)
        if mine is not None and mine.status is not JobStatus.PENDING:
            return True  # running or finished: the claim decides, as for any redelivery
        others = [run for run in runs if run.id != job_id]
        running = [run for run in others if run.status is JobStatus.RUNNING]
        if message.overlap == "skip":
            if not running:
                return True
            self._skip(job_id, message, skipped_message(message.schedule, running[0].id))
            return False
        waiting = [
            run
            for run in others
            if run.status is JobStatus.PENDING
            and (mine is None or run.created_at < mine.created_at)
        ]
        if not running and not waiting:
            return True
        self._wait(job_id, message, body)
        return False

    def _skip(self, job_id: str, message: JobMessage, reason: str) -> None:
        now = utcnow()
        job = Job.from_message(job_id, message)
        cancelled = job.model_copy(
            update={"status": JobStatus.CANCELLED, "error_message": reason, "completed_at": now}
        )
        if not self.store.create_if_new(cancelled):
            self.store.skip(job_id, cancelled.user_id, reason)
        logger.info("fire skipped (overlap: skip)", extra={"schedule": message.schedule})

    def _wait(self, job_id: str, message: JobMessage, body: str) -> None:
        job = Job.from_message(job_id, message)
        self.store.create_if_new(job)
        # Its next look is due then: only if that look never comes (the message was lost)
        # does the sweeper send it again, SWEEP_AFTER_SECONDS later.
        self.store.defer(job_id, until=time.time() + QUEUE_RECHECK_SECONDS)
        # A new message, not this one made visible later: its receive count starts again, so
        # a long wait never sends the fire to the dead-letter queue.
        self.queue.send_later(body, QUEUE_RECHECK_SECONDS)
        logger.info(
            "fire waits for the schedule's earlier runs (overlap: queue)",
            extra={
                "schedule": message.schedule,
                "scheduled_for": iso(job.scheduled_for or job.created_at),
            },
        )
