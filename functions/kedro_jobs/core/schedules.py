"""The API's schedule use cases: create, read, list, change, pause, resume, delete and run
now. A schedule's job body is checked exactly as ``POST /jobs`` checks a job's (core/jobs.py),
its expression and time zone as EventBridge Scheduler reads them (core/schedule_times.py);
the schedule itself lives in EventBridge Scheduler (core/scheduler.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from kedro_jobs.core import jobs
from kedro_jobs.core.errors import JobsError, NotOffered
from kedro_jobs.core.messages import owner_seal
from kedro_jobs.core.models import Job, utcnow
from kedro_jobs.core.queue import UnsendableMessage, encode
from kedro_jobs.core.requests import JobMessage, JobRequest, Overlap, ScheduleName
from kedro_jobs.core.schedule_times import InvalidExpression, next_fires, parse, zone
from kedro_jobs.core.scheduler import SCHEDULED_TIME, Scheduler, StoredSchedule
from kedro_jobs.core.states import JobStatus
from kedro_jobs.names import reserved_user

NEXT_FIRES = 5
Expression = Annotated[StrictStr, StringConstraints(min_length=1, max_length=256)]
TimeZone = Annotated[StrictStr, StringConstraints(min_length=1, max_length=50)]
Description = Annotated[StrictStr, StringConstraints(max_length=512)]
# EventBridge Scheduler's flexible time window: 1 to 1440 minutes.
WindowMinutes = Annotated[int, Field(ge=1, le=1440)]


def _check_expression(value: str | None) -> str | None:
    if value is None:  # PATCH: unchanged
        return None
    try:
        expr = parse(value)
    except InvalidExpression as exc:
        raise ValueError(str(exc)) from exc
    return expr.text


def _check_zone(value: str | None) -> str | None:
    if value is None:  # PATCH: unchanged
        return None
    try:
        zone(value)
    except InvalidExpression as exc:
        raise ValueError(str(exc)) from exc
    return value


class ScheduleChange(BaseModel):
    """Body of ``PATCH /schedules/{name}``: the fields given replace the schedule's."""

    model_config = ConfigDict(extra="forbid")

    expression: Expression | None = None
    timezone: TimeZone | None = None
    job: JobRequest | None = None
    description: Description | None = None
    flexible_window_minutes: WindowMinutes | None = None
    overlap: Overlap | None = None

    _expression = field_validator("expression")(_check_expression)
    _zone = field_validator("timezone")(_check_zone)


class ScheduleRequest(BaseModel):
    """Body of ``POST /schedules``."""

    model_config = ConfigDict(extra="forbid")

    name: ScheduleName
    expression: Expression
    timezone: TimeZone = "UTC"
    job: JobRequest
    description: Description | None = None
    flexible_window_minutes: WindowMinutes | None = None
    overlap: Overlap = "allow"

    _expression = field_validator("expression")(_check_expression)
    _zone = field_validator("timezone")(_check_zone)

    @model_validator(mode="after")
    def _at_in_future(self) -> ScheduleRequest:
        _check_not_past(self.expression, self.timezone)
        return self


def _check_not_past(expression: str, timezone: str) -> None:
    expr = parse(expression)
    if expr.kind == "at" and not next_fires(
        expr, zone(timezone), after=utcnow(), count=1, anchor=utcnow()
    ):
        raise ValueError(f"{expression} is in the past (in time zone {timezone})")


class LastRun(BaseModel):
    id: str
    status: JobStatus
    created_at: datetime


class Schedule(BaseModel):
    """A schedule as the API shows it."""

    name: str
    expression: str
    timezone: str
    state: Literal["enabled", "paused"]
    job: JobRequest
    description: str | None = None
    flexible_window_minutes: int | None = None
    overlap: Overlap = "allow"
    next_fires: list[datetime] = Field(default_factory=list)  # the next 5 (none when paused)
    last_run: LastRun | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class SchedulePage(BaseModel):
    schedules: list[Schedule]
    next_cursor: str | None = None


class Backends(jobs.Backends, Protocol):
    @property
    def scheduler(self) -> Scheduler: ...


class UnreadableSchedule(JobsError):
    """A schedule in the group whose target is not one this API made (edited by hand)."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"Schedule {name!r} cannot be read: {why}")


class InvalidSchedule(JobsError):
    """A schedule change that is not valid as a whole (a 422)."""


def _scheduler(backends: Backends) -> Scheduler:
    if not backends.settings.schedule_group_name:
        raise NotOffered(
            "schedules are not offered by this deployment (no SCHEDULE_GROUP_NAME); deploy "
            "the template, which creates the schedule group"
        )
    return backends.scheduler


def _key(backends: Backends) -> str:
    return backends.settings.signing_key.get_secret_value()


def _check_job(backends: Backends, request: JobRequest) -> None:
    """As POST /jobs checks a job: what it asks of the deployment, its pipeline."""
    jobs.check_offered(backends.settings, request.compute, request.max_job_seconds)
    jobs.check_pipeline(backends.manifest.get(), request.pipeline_name)


def _message(
    user: str,
    name: str,
    job: JobRequest,
    overlap: Overlap,
    scheduled_for: datetime,
    *,
    key: str,
) -> JobMessage:
    # A reserved owner (anonymous, a machine client) is one no plain queue message may name:
    # the API seals it, and the consumer checks the seal (core/messages.py).
    seal = owner_seal(key, user, name) if key and reserved_user(user) else None
    try:
        return JobMessage.model_validate(
            {
                **job.spec(),
                "version": 1,
                "user_id": user,
                "schedule": name,
                "scheduled_for": scheduled_for,
                "overlap": overlap,
                "owner_seal": seal,
            }
        )
    except ValidationError as exc:
        raise UnsendableMessage(str(exc.errors()[0]["msg"])) from exc


def fire_input(user: str, name: str, job: JobRequest, overlap: Overlap, *, key: str) -> str:
    """The message Scheduler sends at each fire, with the fire's time left for it to fill
    (``key``: the deployment's signing key, which seals a reserved owner)."""
    body = json.loads(encode(_message(user, name, job, overlap, utcnow(), key=key)))
    body["scheduled_for"] = SCHEDULED_TIME
    return json.dumps(body, separators=(",", ":"))


def read_input(name: str, text: str) -> JobMessage:
    """A schedule's message template as a message (its fire time: the epoch)."""
    try:
        body = json.loads(text.replace(SCHEDULED_TIME, "1970-01-01T00:00:00Z"))
        return JobMessage.model_validate(body)
    except (ValueError, ValidationError) as exc:
        raise UnreadableSchedule(name, "its target is not a kedro-jobs message") from exc


def _view(backends: Backends, user: str, stored: StoredSchedule) -> Schedule:
    message = read_input(stored.name, stored.input)
    if message.user_id != user:  # a digest collision, or a schedule edited by hand
        raise UnreadableSchedule(stored.name, "it belongs to another owner")
    job = JobRequest.model_validate(message.spec())
    fires: list[datetime] = []
    if stored.state == "ENABLED":
        now = utcnow()
        try:
            fires = next_fires(
                parse(stored.expression),
                zone(stored.timezone),
                after=now,
                count=NEXT_FIRES,
                anchor=(stored.created_at or now).replace(microsecond=0),
            )
        except InvalidExpression as exc:  # edited outside the API
            raise UnreadableSchedule(stored.name, str(exc)) from exc
    runs = backends.store.schedule_runs(user, stored.name, limit=1)
    last = (
        LastRun(id=runs[0].id, status=runs[0].status, created_at=runs[0].created_at)
        if runs
        else None
    )
    return Schedule(
        name=stored.name,
        expression=stored.expression,
        timezone=stored.timezone,
        state="enabled" if stored.state == "ENABLED" else "paused",
        job=job,
        description=stored.description,
        flexible_window_minutes=stored.flexible_window_minutes,
        overlap=message.overlap or "allow",
        next_fires=fires,
        last_run=last,
        created_at=stored.created_at,
        updated_at=stored.updated_at,
    )


def create(backends: Backends, user: str, request: ScheduleRequest) -> Schedule:
    scheduler = _scheduler(backends)
    _check_job(backends, request.job)
    stored = StoredSchedule(
        name=request.name,
        expression=request.expression,
        timezone=request.timezone,
        state="ENABLED",
        input=fire_input(user, request.name, request.job, request.overlap, key=_key(backends)),
        description=request.description,
        flexible_window_minutes=request.flexible_window_minutes,
    )
    scheduler.create(user, stored)
    return get(backends, user, request.name)


def get(backends: Backends, user: str, name: str) -> Schedule:
    return _view(backends, user, _scheduler(backends).get(user, name))


def list_schedules(
    backends: Backends, user: str, *, limit: int, cursor: str | None
) -> SchedulePage:
    scheduler = _scheduler(backends)
    names, token = scheduler.names(user, limit=limit, cursor=cursor)
    shown = []
    for name in names:
        try:
            shown.append(get(backends, user, name))
        except JobsError:  # deleted meanwhile, or not readable: not listed
            continue
    return SchedulePage(schedules=shown, next_cursor=token)


def change(backends: Backends, user: str, name: str, patch: ScheduleChange) -> Schedule:
    scheduler = _scheduler(backends)
    stored = scheduler.get(user, name)
    current = _view(backends, user, stored)
    given = patch.model_dump(exclude_unset=True)
    expression = (
        patch.expression if "expression" in given and patch.expression else stored.expression
    )
    timezone = patch.timezone if "timezone" in given and patch.timezone else stored.timezone
    if "expression" in given or "timezone" in given:  # an at() that has fired may be edited
        try:
            _check_not_past(expression, timezone)
        except ValueError as exc:
            raise InvalidSchedule(str(exc)) from exc
    job = patch.job if patch.job is not None else current.job
    if patch.job is not None:
        _check_job(backends, job)
    overlap = patch.overlap if patch.overlap is not None else current.overlap
    updated = StoredSchedule(
        name=name,
        expression=expression,
        timezone=timezone,
        state=stored.state,
        input=fire_input(user, name, job, overlap, key=_key(backends)),
        description=given.get("description", stored.description),
        flexible_window_minutes=(
            given.get("flexible_window_minutes", stored.flexible_window_minutes)
        ),
    )
    scheduler.update(user, updated)
    return get(backends, user, name)


def set_state(backends: Backends, user: str, name: str, *, enabled: bool) -> Schedule:
    """Pause (``enabled=False``) or resume a schedule."""
    scheduler = _scheduler(backends)
    stored = scheduler.get(user, name)
    read_input(name, stored.input)
    state: Literal["ENABLED", "DISABLED"] = "ENABLED" if enabled else "DISABLED"
    if stored.state != state:
        scheduler.update(user, _with_state(stored, state))
    return get(backends, user, name)


def _with_state(stored: StoredSchedule, state: Literal["ENABLED", "DISABLED"]) -> StoredSchedule:
    return StoredSchedule(
        name=stored.name,
        expression=stored.expression,
        timezone=stored.timezone,
        state=state,
        input=stored.input,
        description=stored.description,
        flexible_window_minutes=stored.flexible_window_minutes,
    )


def delete(backends: Backends, user: str, name: str) -> None:
    """The schedule ends; the jobs it made stay."""
    _scheduler(backends).delete(user, name)


def run_now(backends: Backends, user: str, name: str) -> Job:
    """A fire now, outside the schedule's times: a job like its fires' (same message, the
    overlap policy applies), written and queued as POST /jobs does."""
    schedule = get(backends, user, name)
    _check_job(backends, schedule.job)
    now = datetime.now(UTC).replace(microsecond=0)
    message = _message(user, name, schedule.job, schedule.overlap, now, key=_key(backends))
    job = Job.from_message(message.derived_job_id(""), message)
    return jobs.enqueue(backends, job)
