"""The table every part of the store writes through: the client, reading a job by key, and
one conditional write (UpdateItem) with its condition built in expressions.py."""

from __future__ import annotations

from typing import Any, Literal, Self

from kedro_jobs.core.aws import aws_errors, client, error_code
from kedro_jobs.core.errors import JobAlreadyExists
from kedro_jobs.core.events import JobEvents, NoEvents
from kedro_jobs.core.models import Job
from kedro_jobs.core.settings import Settings
from kedro_jobs.core.store.expressions import Cond, Placeholders, exists, missing
from kedro_jobs.core.store.items import AttributeValue, encode_all, from_item, key, to_item

DEPENDENCY = "DynamoDB"
# A finished job leaves the sweeper's index.
_SWEEP_ATTRS = ("sweep", "sweep_due")


class ConditionFailed(Exception):
    def __init__(self, item: dict[str, AttributeValue]) -> None:
        super().__init__("condition failed")
        self.item = item  # the item as it was ({} if it does not exist)


class Table:
    """Jobs in one DynamoDB table. The client is injected, or created on first use."""

    def __init__(
        self,
        table_name: str,
        *,
        dynamodb: Any = None,
        ttl_days: int = 0,
        events: JobEvents | None = None,
    ) -> None:
        self.table_name = table_name
        self._client = dynamodb
        self.ttl_days = ttl_days
        self.events: JobEvents = events or NoEvents()

    @classmethod
    def from_settings(cls, settings: Settings, *, events_in_background: bool = False) -> Self:
        """The store every function uses, publishing job events where a bus is configured
        (``events_in_background``: sent by a thread; the function flushes them before it
        returns, see core/events.py)."""
        from kedro_jobs.core.events import events_from_settings

        return cls(
            settings.jobs_table_name,
            ttl_days=settings.job_ttl_days,
            events=events_from_settings(settings, background=events_in_background),
        )

    @classmethod
    def over(cls, other: Table) -> Self:
        """This role (roles/) over ``other``'s table: its client (or, if it has made none
        yet, the same per-container one), its job events and its items' lifetime."""
        return cls(
            other.table_name, dynamodb=other._client, ttl_days=other.ttl_days, events=other.events
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = client("dynamodb")
        return self._client

    def _changed(self, job: Job | None) -> Job | None:
        """Every write that changes a job's state ends here: it tells the job events."""
        if job is not None:
            self.events.changed(job)
        return job

    def get(self, job_id: str, *, lenient: bool = False) -> Job | None:
        """The job, or None. ``lenient``: a damaged item is read as well as it can be (see
        from_item) rather than raising."""
        item = self._get_item(job_id)
        return from_item(item, lenient=lenient) if item else None

    def _get_item(self, job_id: str) -> dict[str, AttributeValue] | None:
        with aws_errors(DEPENDENCY):
            resp = self.client.get_item(
                TableName=self.table_name, Key=key(job_id), ConsistentRead=True
            )
        item: dict[str, AttributeValue] | None = resp.get("Item")
        return item

    def _put_new(self, job: Job) -> None:
        """One PutItem of a job that does not exist yet (JobAlreadyExists if it does)."""
        placeholders = Placeholders()
        with aws_errors(DEPENDENCY):
            try:
                self.client.put_item(
                    TableName=self.table_name,
                    Item=to_item(job, ttl_days=self.ttl_days),
                    ConditionExpression=missing("id").render(placeholders),
                    ExpressionAttributeNames=placeholders.names,
                )
            except Exception as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    raise JobAlreadyExists(job.id) from exc
                raise

    def _update(
        self, job_id: str, set_values: dict[str, Any], when: Cond, *, remove: tuple[str, ...] = ()
    ) -> dict[str, AttributeValue] | None:
        """One conditional UpdateItem (see _write). Returns the new attributes, or None if
        the condition failed (the job is not in the expected state)."""
        try:
            return self._write(job_id, set_values, when, remove=remove, returns="ALL_NEW")
        except ConditionFailed:
            return None

    def _write(
        self,
        job_id: str,
        set_values: dict[str, Any],
        when: Cond,
        *,
        remove: tuple[str, ...] = (),
        returns: Literal["ALL_NEW", "NONE"] = "NONE",
    ) -> dict[str, AttributeValue]:
        """One UpdateItem of an existing job that sets ``set_values`` (attribute -> value,
        encoded by the item schema) and removes ``remove`` if ``when`` holds, returning
        ``returns``. A failed condition raises ConditionFailed with the item as it was."""
        status = set_values.get("status")
        if status is not None and status.terminal:
            remove = (*remove, *_SWEEP_ATTRS)
        placeholders = Placeholders()
        update = placeholders.update(set_values, remove)
        condition = (exists("id") & when).render(placeholders)
        with aws_errors(DEPENDENCY):
            try:
                resp = self.client.update_item(
                    TableName=self.table_name,
                    Key=key(job_id),
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=placeholders.names,
                    ExpressionAttributeValues=placeholders.values,
                    ReturnValues=returns,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except Exception as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    raise ConditionFailed(getattr(exc, "response", {}).get("Item") or {}) from exc
                raise
        attributes: dict[str, AttributeValue] = resp.get("Attributes", {})
        return attributes

    @staticmethod
    def _as_written(job: Job, set_values: dict[str, Any]) -> Job:
        """The record after a write that returned nothing: ``job`` with ``set_values``."""
        return from_item({**to_item(job), **encode_all(set_values)})
