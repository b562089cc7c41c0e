"""Getting a waiting job to a worker: the sweeper's index of live jobs (stranded ones are
re-sent or failed: ``Sweeps``) and the marks that let one delivery start one task of a task
backend such as Fargate (``Dispatches``).

The sweeper's index (sparse, keys only): a pending or running job carries ``sweep`` (its
status) and ``sweep_due`` (epoch seconds: a pending job's creation or last re-send, a running
job's lease end); a finished job has neither, so the index holds only live jobs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kedro_jobs.core.aws import aws_errors
from kedro_jobs.core.models import Job
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store.expressions import (
    Cond,
    Placeholders,
    after,
    before,
    eq,
    exists,
    is_status,
    missing,
    moving,
)
from kedro_jobs.core.store.fencing import abandoned
from kedro_jobs.core.store.items import decode, encode, from_item, status_change
from kedro_jobs.core.store.table import DEPENDENCY, ConditionFailed, Table

_INDEX_SWEEP = "sweep"


@dataclass(frozen=True)
class Stranded:
    """A live job the sweeper found overdue: its record, the ``sweep_due`` it was found by
    (the condition of the sweeper's own write) and how many of the sweeper's looks found it
    untaken with no consumer working (core/liveness.py)."""

    job: Job
    due: float
    looks: int

    def as_found(self, *, to: JobStatus | None = None) -> Cond:
        """The job is as the sweeper found it: same status, attempt and ``sweep_due``
        (``to``: the status the write moves it to)."""
        status = self.job.status
        found = is_status(status) if to is None else moving(status, to)
        return found & eq("attempts", self.job.attempts) & eq("sweep_due", self.due)


class Sweeps(Table):
    """The sweeper's index of live jobs, and its writes to the stranded ones it finds."""

    def stranded(self, status: JobStatus, *, due_before: float, limit: int = 100) -> list[Stranded]:
        """Live jobs of ``status`` whose ``sweep_due`` is before ``due_before``, oldest first:
        a Query on the sparse sweep index (never a Scan), then each job read by key."""
        placeholders = Placeholders()
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": _INDEX_SWEEP,
            "KeyConditionExpression": (
                eq("sweep", status) & before("sweep_due", due_before)
            ).render(placeholders),
            "ExpressionAttributeNames": placeholders.names,
            "ExpressionAttributeValues": placeholders.values,
            "Limit": limit,
        }
        found: list[Stranded] = []
        while len(found) < limit:
            with aws_errors(DEPENDENCY):
                resp = self.client.query(**query)
            for index_item in resp.get("Items", []):
                item = self._get_item(index_item["id"]["S"])
                if item is None or item.get("sweep") != encode("sweep", status):
                    continue  # finished or moved on since the index was written
                found.append(
                    Stranded(
                        job=from_item(item, lenient=True),
                        due=decode("sweep_due", item["sweep_due"]),
                        looks=decode("looks", item["looks"]) if "looks" in item else 0,
                    )
                )
            if not resp.get("LastEvaluatedKey"):
                break
            query["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return found[:limit]

    def count_live(self, status: JobStatus, *, due_after: float | None = None) -> int:
        """How many live jobs of ``status`` there are (``due_after``: only those whose
        ``sweep_due`` is later, e.g. running jobs whose lease is live): a Query on the sparse
        sweep index that counts keys, never a Scan."""
        placeholders = Placeholders()
        key = eq("sweep", status)
        if due_after is not None:
            key = key & after("sweep_due", due_after)
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": _INDEX_SWEEP,
            "KeyConditionExpression": key.render(placeholders),
            "ExpressionAttributeNames": placeholders.names,
            "ExpressionAttributeValues": placeholders.values,
            "Select": "COUNT",
        }
        total = 0
        while True:
            with aws_errors(DEPENDENCY):
                resp = self.client.query(**query)
            total += int(resp.get("Count", 0))
            if not resp.get("LastEvaluatedKey"):
                return total
            query["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def mark_looked(self, stranded: Stranded, *, next_due: float, looks: int) -> bool:
        """The sweeper notes its look at a stranded job (before sending its message again,
        if it does): True if the job is as it was found (same status, attempt and
        ``sweep_due``), so of two sweepers only one sends, and none once a consumer has
        claimed it or beaten its heartbeat."""
        values = {"sweep_due": next_due, "looks": looks}
        try:
            self._write(stranded.job.id, values, stranded.as_found())
        except ConditionFailed:
            return False
        return True

    def fail_stranded(self, stranded: Stranded, error_message: str) -> Job | None:
        """A pending job the sweeper gave up on: failed, if it is still as it was found."""
        job = stranded.job
        values = {**status_change(job.user_id, JobStatus.FAILED), "error_message": error_message}
        attrs = self._update(job.id, values, stranded.as_found(to=JobStatus.FAILED))
        return self._changed(from_item(attrs, lenient=True)) if attrs else None


class Dispatches(Table):
    """The marks that let one delivery of a task backend's job start one task."""

    def mark_dispatched(self, job_id: str, *, until: float) -> bool:
        """A task (Fargate's) is about to be asked for this job: True if this caller may ask (the
        job waits for a task, and none was asked for since ``dispatch_due`` passed), so two
        deliveries of one message start one task. ``until``: when it may be asked again (the
        task did not claim it by then); the sweeper waits as long."""
        now = time.time()
        waiting = is_status(JobStatus.PENDING) | (is_status(JobStatus.RUNNING) & abandoned(now))
        not_asked = missing("dispatch_due") | before("dispatch_due", now)
        try:
            self._write(job_id, {"dispatch_due": until, "sweep_due": until}, waiting & not_asked)
        except ConditionFailed:
            return False
        return True

    def dispatched(self, job_id: str, *, task_arn: str | None) -> None:
        """The task that was asked for (its ARN), or None if asking failed: then another
        delivery may ask at once."""
        values = {"task_arn": task_arn} if task_arn else {"dispatch_due": 0.0}
        self._update(job_id, values, exists("status"))


class Delivery(Sweeps, Dispatches):
    """Both, as one part (the name before the roles)."""
