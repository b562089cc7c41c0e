"""A job claimed for one run, by a delivery or by a Fargate task.

Whether a job may be claimed (pending, its lease expired, handed off, cancelled, out of
attempts) is decided in one place, ``RunJobs.claim`` (core/store/claims.py); here are only
the lease a run asks for, and the job a message from another system makes when it is first
delivered.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from kedro_jobs.consumer.outcome import Recorder
from kedro_jobs.consumer.segments import discard_checkpoints
from kedro_jobs.core.messages import check_may_create
from kedro_jobs.core.models import Job
from kedro_jobs.core.requests import JobMessage
from kedro_jobs.core.settings import Settings
from kedro_jobs.core.states import TERMINAL
from kedro_jobs.core.store.claims import Claim, ClaimOutcome
from kedro_jobs.core.store.roles.run import RunJobs

logger = Logger(service="kedro-jobs-consumer", child=True)


def lease_seconds(settings: Settings, budget: float) -> float:
    """A forked run's parent beats the heartbeat at least once a second, so its lease is
    short; an inline run beats only between nodes, so its lease is the whole budget."""
    if settings.isolation == "fork":
        return float(min(settings.job_lease_seconds, budget))
    return budget


def claimed(claim: Claim, not_run: str) -> Job | None:
    """The job, if this claim made it this run's; else None, logged as ``not_run``."""
    if claim.outcome is ClaimOutcome.CLAIMED and claim.job is not None:
        return claim.job
    logger.info(not_run, extra={"claim": claim.outcome.value})
    if claim.job is not None and claim.job.status in TERMINAL:
        discard_checkpoints(claim.job)  # ended between two segments: no run will read them
    return None


class Claimer:
    def __init__(self, settings: Settings, store: RunJobs, recorder: Recorder) -> None:
        self.settings = settings
        self.store = store
        self.recorder = recorder

    def for_task(self, job_id: str, budget: float) -> Claim:
        """A Fargate task's claim: its job exists (the consumer that dispatched it made it)."""
        return self._claim(job_id, lease_seconds(self.settings, budget))

    def for_delivery(self, job_id: str, message: JobMessage, budget: float) -> Claim:
        # After the lease, the sweeper (or a redelivery) may take the job over from a
        # consumer that died.
        lease = lease_seconds(self.settings, budget)
        user_id = message.user_id or "anonymous"
        if message.job_id is None:
            # A message from another system: its job id is derived from the message, so the
            # first delivery makes the job, already claimed, in one write; a redelivery
            # finds it and claims as usual.
            created = self._create_claimed(job_id, message, lease)
            if created is not None:
                return created
        claim = self._claim(job_id, lease, user_id=user_id)
        if claim.outcome is ClaimOutcome.NOT_FOUND:
            # Another system chose the job id itself: the same, with its id.
            created = self._create_claimed(job_id, message, lease)
            if created is not None:
                return created
            claim = self._claim(job_id, lease)
        if claim.outcome is ClaimOutcome.EXHAUSTED:
            self.recorder.count("JobsFailed")
        return claim

    def _claim(self, job_id: str, lease: float, *, user_id: str | None = None) -> Claim:
        return self.store.claim(
            job_id, lease_seconds=lease, max_attempts=self.settings.max_attempts, user_id=user_id
        )

    def _create_claimed(self, job_id: str, message: JobMessage, lease: float) -> Claim | None:
        check_may_create(message, self.settings.signing_key.get_secret_value())
        job = Job.from_message(job_id, message, compute="lambda")
        created = self.store.create_claimed(job, lease_seconds=lease)
        return None if created is None else Claim(ClaimOutcome.CLAIMED, created)
