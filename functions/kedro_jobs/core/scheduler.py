"""Schedules in EventBridge Scheduler: the only place they are kept.

A schedule's target is the jobs queue and its input the job's queue message, with the fire's
scheduled time put in by Scheduler itself (``<aws.scheduler.scheduled-time>``). Its owner is
in its name: Scheduler's name is a digest of the owner, then the schedule's own name, so one
owner's schedules are a ``NamePrefix`` listing of the group and two owners may use one name.
(Scheduler's schedules take no tags, and the table keeps nothing of them.)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from kedro_jobs.core.aws import aws_errors, client, error_code
from kedro_jobs.core.errors import JobsError

_DEPENDENCY = "EventBridge Scheduler"
_OWNER_DIGITS = 16  # of the owner's SHA-256; Scheduler's names are at most 64 characters
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"

State = Literal["ENABLED", "DISABLED"]


class ScheduleNotFound(JobsError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Schedule {name!r} not found")
        self.name = name


class ScheduleExists(JobsError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Schedule {name!r} already exists; PATCH it, or choose another name")
        self.name = name


def owner_prefix(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()[:_OWNER_DIGITS] + "."


@dataclass(frozen=True)
class StoredSchedule:
    """A schedule as Scheduler keeps it (``input``: the message template, as text)."""

    name: str
    expression: str
    timezone: str
    state: State
    input: str
    description: str | None = None
    flexible_window_minutes: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Scheduler:
    def __init__(self, group: str, role_arn: str, queue_arn: str, *, scheduler: Any = None) -> None:
        self.group = group
        self.role_arn = role_arn
        self.queue_arn = queue_arn
        self._client = scheduler

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = client("scheduler")
        return self._client

    def create(self, user_id: str, schedule: StoredSchedule) -> None:
        with aws_errors(_DEPENDENCY):
            try:
                self.client.create_schedule(**self._fields(user_id, schedule))
            except Exception as exc:
                if error_code(exc) == "ConflictException":
                    raise ScheduleExists(schedule.name) from exc
                raise

    def update(self, user_id: str, schedule: StoredSchedule) -> None:
        """Replace the schedule (UpdateSchedule takes every field)."""
        with aws_errors(_DEPENDENCY):
            try:
                self.client.update_schedule(**self._fields(user_id, schedule))
            except Exception as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    raise ScheduleNotFound(schedule.name) from exc
                raise

    def get(self, user_id: str, name: str) -> StoredSchedule:
        with aws_errors(_DEPENDENCY):
            try:
                resp = self.client.get_schedule(
                    Name=owner_prefix(user_id) + name, GroupName=self.group
                )
            except Exception as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    raise ScheduleNotFound(name) from exc
                raise
        return _stored(resp, name)

    def delete(self, user_id: str, name: str) -> None:
        with aws_errors(_DEPENDENCY):
            try:
                self.client.delete_schedule(Name=owner_prefix(user_id) + name, GroupName=self.group)
            except Exception as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    raise ScheduleNotFound(name) from exc
                raise

    def names(
        self, user_id: str, *, limit: int, cursor: str | None = None
    ) -> tuple[list[str], str | None]:
        """One page of the owner's schedule names (a NamePrefix listing of the group), and
        the token of the next page."""
        prefix = owner_prefix(user_id)
        request: dict[str, Any] = {
            "GroupName": self.group,
            "NamePrefix": prefix,
            "MaxResults": limit,
        }
        if cursor:
            request["NextToken"] = cursor
        with aws_errors(_DEPENDENCY):
            resp = self.client.list_schedules(**request)
        names = [s["Name"][len(prefix) :] for s in resp.get("Schedules", [])]
        return sorted(names), resp.get("NextToken")

    def _fields(self, user_id: str, schedule: StoredSchedule) -> dict[str, Any]:
        window: dict[str, Any] = {"Mode": "OFF"}
        if schedule.flexible_window_minutes:
            window = {
                "Mode": "FLEXIBLE",
                "MaximumWindowInMinutes": schedule.flexible_window_minutes,
            }
        fields: dict[str, Any] = {
            "Name": owner_prefix(user_id) + schedule.name,
            "GroupName": self.group,
            "ScheduleExpression": schedule.expression,
            "ScheduleExpressionTimezone": schedule.timezone,
            "FlexibleTimeWindow": window,
            "State": schedule.state,
            "Target": {"Arn": self.queue_arn, "RoleArn": self.role_arn, "Input": schedule.input},
        }
        if schedule.description:
            fields["Description"] = schedule.description
        return fields


def _stored(resp: dict[str, Any], name: str) -> StoredSchedule:
    window = resp.get("FlexibleTimeWindow") or {}
    return StoredSchedule(
        name=name,
        expression=resp["ScheduleExpression"],
        timezone=resp.get("ScheduleExpressionTimezone") or "UTC",
        state="DISABLED" if resp.get("State") == "DISABLED" else "ENABLED",
        input=(resp.get("Target") or {}).get("Input") or "{}",
        description=resp.get("Description") or None,
        flexible_window_minutes=window.get("MaximumWindowInMinutes")
        if window.get("Mode") == "FLEXIBLE"
        else None,
        created_at=resp.get("CreationDate"),
        updated_at=resp.get("LastModificationDate"),
    )
