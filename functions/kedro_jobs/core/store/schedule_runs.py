"""A schedule's runs: the newest of them from the sparse by-schedule index (a Query, never a
Scan; the index holds their status: ``ScheduleRuns``), and the writes of the consumer's
overlap policy (a fire skipped, or one that waits for the runs before it: ``Fires``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kedro_jobs.core.aws import aws_errors
from kedro_jobs.core.errors import JobAlreadyExists
from kedro_jobs.core.models import Job, utcnow
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store.expressions import Placeholders, eq, is_status, moving
from kedro_jobs.core.store.items import from_item, schedule_key, status_change
from kedro_jobs.core.store.table import DEPENDENCY, ConditionFailed, Table

_INDEX = "by_user_schedule"


@dataclass(frozen=True)
class ScheduleRun:
    """A schedule's run as the index holds it."""

    id: str
    status: JobStatus
    created_at: str  # ISO 8601 UTC, as stored (sorts as text)


class ScheduleRuns(Table):
    def schedule_runs(self, user_id: str, schedule: str, *, limit: int = 10) -> list[ScheduleRun]:
        """The schedule's newest ``limit`` runs, newest first, from the index alone."""
        placeholders = Placeholders()
        condition = eq("user_schedule", schedule_key(user_id, schedule)).render(placeholders)
        with aws_errors(DEPENDENCY):
            resp = self.client.query(
                TableName=self.table_name,
                IndexName=_INDEX,
                KeyConditionExpression=condition,
                ExpressionAttributeNames=placeholders.names,
                ExpressionAttributeValues=placeholders.values,
                ScanIndexForward=False,
                Limit=limit,
            )
        runs = []
        for item in resp.get("Items", []):
            try:
                runs.append(
                    ScheduleRun(
                        id=item["id"]["S"],
                        status=JobStatus(item["status"]["S"]),
                        created_at=item["created_at"]["S"],
                    )
                )
            except (KeyError, ValueError):  # a damaged item is no run to wait for
                continue
        return runs


class Fires(Table):
    """The consumer's writes for a schedule's fire under its overlap policy."""

    def create_if_new(self, job: Job) -> bool:
        """Write ``job`` unless one with its id exists (a fire delivered again): True if
        this call made it."""
        try:
            self._put_new(job)
        except JobAlreadyExists:
            return False
        self.events.changed(job)
        return True

    def skip(self, job_id: str, user_id: str, reason: str) -> Job | None:
        """pending -> cancelled, saying why (a fire the overlap policy skipped); None if the
        job was no longer pending."""
        values: dict[str, Any] = {
            **status_change(user_id, JobStatus.CANCELLED),
            "error_message": reason,
        }
        attrs = self._update(job_id, values, moving(JobStatus.PENDING, JobStatus.CANCELLED))
        return self._changed(from_item(attrs, lenient=True)) if attrs else None

    def defer(self, job_id: str, *, until: float) -> bool:
        """A pending job waiting for its schedule's earlier runs: the sweeper leaves it alone
        until ``until`` (its waiting is not a lost message). False if it is not pending."""
        try:
            self._write(
                job_id,
                {"sweep_due": until, "updated_at": utcnow()},
                is_status(JobStatus.PENDING),
            )
        except ConditionFailed:
            return False
        return True
