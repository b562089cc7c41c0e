"""A job as its users and the functions around a run see it: create and fail (``Jobs``, the
writes several roles share), read and cancel as its user (``UserJobs``)."""

from __future__ import annotations

import time

from kedro_jobs.core.aws import aws_errors
from kedro_jobs.core.errors import InvalidTransition, JobNotFound
from kedro_jobs.core.liveness import held
from kedro_jobs.core.models import Job, utcnow
from kedro_jobs.core.states import TERMINAL, JobStatus
from kedro_jobs.core.store import texts
from kedro_jobs.core.store.expressions import before, eq, is_status, moving
from kedro_jobs.core.store.fencing import Abandoned
from kedro_jobs.core.store.items import from_item, status_change
from kedro_jobs.core.store.table import DEPENDENCY, Table


class Jobs(Table):
    """The writes several roles share: a new job, and a job failed by someone who does not
    own its run."""

    def create(self, job: Job, *, announce: bool = True) -> Job:
        """``announce``: publish its "created" event now (else the caller does, later)."""
        self._put_new(job)
        if announce:
            self.events.changed(job)
        return job

    def fail(
        self, job_id: str, error_message: str, *, only_if_lease_expired: bool = False
    ) -> Job | None:
        """pending | running -> failed, by someone who does not own the run (the API when
        the send failed, the consumer for an unparseable message, the DLQ handler).
        Returns None when the job was already terminal. A damaged item can be failed too."""
        job = self.get(job_id, lenient=True)
        if job is None:
            raise JobNotFound(job_id)
        if job.status in TERMINAL:
            return None
        values = {**status_change(job.user_id, JobStatus.FAILED), "error_message": error_message}
        running = moving(JobStatus.RUNNING, JobStatus.FAILED) & eq("attempts", job.attempts)
        if only_if_lease_expired:
            running = running & before("lease_expires_at", time.time())
        when = moving(JobStatus.PENDING, JobStatus.FAILED) | running
        attrs = self._update(job_id, values, when)
        return self._changed(from_item(attrs, lenient=True)) if attrs else None


class UserJobs(Abandoned):
    """A job as its user sees it: read, cancel (and the table's health)."""

    def get_for_user(self, job_id: str, user_id: str) -> Job:
        """The job if it exists and belongs to ``user_id``; someone else's job is not found.
        What a user reads never fails on a damaged item (it is shown as well as it can be)."""
        job = self.get(job_id, lenient=True)
        if job is None or job.user_id != user_id:
            raise JobNotFound(job_id)
        return job

    def request_cancel(self, job_id: str, user_id: str) -> Job:
        """pending -> cancelled at once; running -> cancel_requested (the consumer stops at
        the next node boundary); terminal -> InvalidTransition."""
        for _ in range(5):
            job = self.get_for_user(job_id, user_id)
            if job.status in TERMINAL:
                raise InvalidTransition(job_id, job.status, "cancelled")
            if job.status is JobStatus.PENDING:
                values = {
                    **status_change(job.user_id, JobStatus.CANCELLED),
                    "error_message": texts.CANCELLED_BEFORE_START,
                }
                attrs = self._update(job_id, values, moving(JobStatus.PENDING, JobStatus.CANCELLED))
            elif not held(job, time.time()):
                # No live consumer holds it: nothing would see the flag, so it ends now.
                attrs = None
                cancelled = self._cancel_abandoned(job)
                if cancelled is not None:
                    return cancelled
            else:
                attrs = self._update(
                    job_id,
                    {"cancel_requested": True, "updated_at": utcnow()},
                    is_status(JobStatus.RUNNING),
                )
            if attrs is not None:
                changed = from_item(attrs, lenient=True)
                self.events.changed(changed)
                return changed
        raise InvalidTransition(job_id, "changing", "cancelled")  # pragma: no cover

    def ping(self) -> None:
        with aws_errors(DEPENDENCY):
            self.client.describe_table(TableName=self.table_name)
