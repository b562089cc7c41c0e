"""The DynamoDB job store: every transition is a conditional write on the expected state.

Reads are GetItem by id; listings are Queries on a keys-only GSI (never a Scan), then one
BatchGetItem of the page's jobs, so their cost does not grow with the table. Free-form
values (parameters, results, options, progress) are stored as JSON strings: exact
round-trips (floats stay floats) and no Decimal conversions.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from kedro_jobs.core.aws import aws_errors, client, error_code
from kedro_jobs.core.errors import (
    DependencyUnavailable,
    InvalidCursor,
    InvalidTransition,
    JobAlreadyExists,
    JobNotFound,
)
from kedro_jobs.core.events import JobEvents, NoEvents
from kedro_jobs.core.models import (
    Compute,
    Job,
    JobPage,
    Progress,
    Segment,
    check_nesting,
    iso,
    utcnow,
)
from kedro_jobs.core.settings import Settings
from kedro_jobs.core.states import TERMINAL, JobStatus

_JSON_FIELDS = ("parameters", "results", "options", "progress", "outputs", "segments")
_INT_FIELDS = ("attempts", "max_job_seconds", "continuations")
_TIME_FIELDS = ("created_at", "started_at", "completed_at", "updated_at")
_INDEX_BY_USER = "by_user"
_INDEX_BY_STATUS = "by_user_status"
_INDEX_BY_PIPELINE = "by_user_pipeline"
# The sweeper's index (sparse, keys only): a pending or running job carries ``sweep`` (its
# status) and ``sweep_due`` (epoch seconds: a pending job's creation or last re-send, a running
# job's lease end); a finished job has neither, so the index holds only live jobs.
_INDEX_SWEEP = "sweep"
_SWEEP_ATTRS = ("sweep", "sweep_due")
_TERMINAL_VALUES = frozenset(str(s) for s in TERMINAL)
_INDEX_HASH = {
    _INDEX_BY_USER: "user_id",
    _INDEX_BY_STATUS: "user_status",
    _INDEX_BY_PIPELINE: "user_pipeline",
}
# A filtered listing (status and pipeline together) reads at most this many index pages per
# request, then hands back a cursor: the request's cost stays bounded.
_MAX_PAGES_PER_LISTING = 5
_BATCH_GET_MAX = 100  # keys per BatchGetItem
_BATCH_GET_RETRIES = 4
_DEPENDENCY = "DynamoDB"


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # this caller owns the run now
    BUSY = "busy"  # running under a live lease elsewhere
    FINISHED = "finished"  # already terminal (or cancelled)
    EXHAUSTED = "exhausted"  # lease expired too often: failed now
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    job: Job | None


@dataclass(frozen=True)
class Stranded:
    """A live job the sweeper found overdue: its record, the ``sweep_due`` it was found by
    (the condition of the sweeper's own write) and how often the sweeper re-sent it."""

    job: Job
    due: float
    resends: int


def _av(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": repr(float(value)) if isinstance(value, float) else str(value)}
    return {"S": str(value)}


def _key(job_id: str) -> dict[str, Any]:
    return {"id": {"S": job_id}}


def _status_key(user_id: str, status: JobStatus | str) -> str:
    return f"{user_id}#{status}"


def _sweep(status: JobStatus, due: float) -> dict[str, Any]:
    return {"sweep": {"S": str(status)}, "sweep_due": {"N": repr(float(due))}}


def to_item(job: Job, *, ttl_days: int = 0) -> dict[str, Any]:
    data = job.model_dump(mode="python")
    as_json = job.model_dump(mode="json", include=set(_JSON_FIELDS))
    item: dict[str, Any] = {}
    for name, value in data.items():
        if value is None:
            continue
        if name in _JSON_FIELDS:
            item[name] = {"S": json.dumps(as_json[name], separators=(",", ":"))}
        elif name in _TIME_FIELDS:
            item[name] = {"S": iso(value)}
        elif name == "status":
            item[name] = {"S": str(value)}
        else:
            item[name] = _av(value)
    item["user_status"] = {"S": _status_key(job.user_id, job.status)}
    item["user_pipeline"] = {"S": f"{job.user_id}#{job.pipeline_name}"}
    if job.status is JobStatus.PENDING:
        item.update(_sweep(job.status, job.created_at.timestamp()))
    elif job.status is JobStatus.RUNNING:
        item.update(_sweep(job.status, job.lease_expires_at or time.time()))
    if ttl_days:
        expires = job.created_at + timedelta(days=ttl_days)
        item["expires_at"] = {"N": str(int(expires.timestamp()))}
    return item


def from_item(item: dict[str, Any], *, lenient: bool = False) -> Job:
    """The job an item holds. Strict (the default), a damaged item raises: what runs a job
    must read it whole. Lenient (what users read), it never raises: a field that cannot be
    read (not JSON, nested over MAX_NESTING, not of its type) is left out, the record's
    ``error_message`` says which, and ``Job.unreadable`` names them (a retry refuses it)."""
    if not lenient:
        return Job.model_validate(_fields(item, None))
    left_out: dict[str, str] = {}
    data = _fields(item, left_out)
    _fill_placeholders(data, left_out)
    try:
        job = Job.model_validate(data)
    except ValidationError as exc:
        job = _what_validates(item, data, exc, left_out)
    if not left_out:
        return job
    note = "Part of this job's stored record could not be read and is not shown: " + "; ".join(
        f"{name} ({why})" for name, why in sorted(left_out.items())
    )
    message = f"{job.error_message} ({note})" if job.error_message else note
    job = job.model_copy(update={"error_message": message})
    job._unreadable = tuple(sorted(left_out))
    return job


def _fields(item: dict[str, Any], left_out: dict[str, str] | None) -> dict[str, Any]:
    """The item's attributes as the record's field values. Given ``left_out`` (lenient), an
    attribute that cannot be decoded is noted there, with why, instead of raising."""
    data: dict[str, Any] = {}
    for name in Job.model_fields:
        attr = item.get(name)
        if attr is None or "NULL" in attr:
            continue
        if left_out is None:
            data[name] = _field(name, attr)
            continue
        try:
            data[name] = _field(name, attr)
            if name in _JSON_FIELDS:
                check_nesting(name, data[name])
        except ValueError as exc:
            data.pop(name, None)
            left_out[name] = str(exc) if name in _JSON_FIELDS else "not a valid value"
        except (KeyError, TypeError, AttributeError, RecursionError):
            data.pop(name, None)
            left_out[name] = "not a valid value"
    return data


def _field(name: str, attr: dict[str, Any]) -> Any:
    if "BOOL" in attr:
        return attr["BOOL"]
    if "N" in attr:
        number = attr["N"]
        return int(number) if name in _INT_FIELDS else float(number)
    if name in _JSON_FIELDS:
        try:
            return json.loads(attr["S"])
        except RecursionError as exc:  # deeper than the interpreter's stack
            raise ValueError(f"{name} is nested too deeply to read") from exc
        except ValueError as exc:
            raise ValueError(f"{name} is not JSON") from exc
    return attr["S"]


# A record needs these; a damaged item still shows its id, and placeholders for the rest.
# An owner that cannot be read is no one ("" is no caller's identity), never "anonymous".
_PLACEHOLDERS: dict[str, Any] = {
    "pipeline_name": "(unreadable)",
    "created_at": "1970-01-01T00:00:00Z",
    "user_id": "",
}


def _fill_placeholders(data: dict[str, Any], left_out: dict[str, str]) -> None:
    for name, placeholder in _PLACEHOLDERS.items():
        if name not in data:
            data[name] = placeholder
            left_out.setdefault(name, "missing")


def _what_validates(
    item: dict[str, Any], data: dict[str, Any], error: ValidationError, left_out: dict[str, str]
) -> Job:
    """The record without the fields that failed validation (lenient reads only)."""
    for detail in error.errors(include_url=False, include_input=False):
        name = str(detail["loc"][0]) if detail["loc"] else ""
        if name in data:
            del data[name]
            left_out[name] = "not a valid value"
    _fill_placeholders(data, left_out)
    try:
        return Job.model_validate(data)
    except ValidationError:
        job_id = str((item.get("id") or {}).get("S", "(unreadable)"))
        left_out.setdefault("id", "not a valid value")
        return Job.model_validate({"id": job_id, **_PLACEHOLDERS})


def encode_cursor(key: dict[str, Any]) -> str:
    plain = {name: attr["S"] for name, attr in key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, hash_attr: str, hash_value: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        plain = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, RecursionError) as exc:  # RecursionError: `[[[...`
        raise InvalidCursor from exc
    expected = {"id", "created_at", hash_attr}
    if (
        not isinstance(plain, dict)
        or set(plain) != expected
        or not all(isinstance(v, str) and 0 < len(v) <= 1024 for v in plain.values())
        or plain[hash_attr] != hash_value
    ):
        raise InvalidCursor
    return {name: {"S": value} for name, value in plain.items()}


class JobStore:
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
    def from_settings(cls, settings: Settings) -> JobStore:
        """The store every function uses, publishing job events where a bus is configured."""
        from kedro_jobs.core.events import events_from_settings

        return cls(
            settings.jobs_table_name,
            ttl_days=settings.job_ttl_days,
            events=events_from_settings(settings),
        )

    def _changed(self, job: Job | None) -> Job | None:
        """Every write that changes a job's state ends here: it tells the job events."""
        if job is not None:
            self.events.changed(job)
        return job

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = client("dynamodb")
        return self._client

    # -- reads ------------------------------------------------------------------------------

    def get(self, job_id: str, *, lenient: bool = False) -> Job | None:
        """The job, or None. ``lenient``: a damaged item is read as well as it can be (see
        from_item) rather than raising."""
        with aws_errors(_DEPENDENCY):
            resp = self.client.get_item(
                TableName=self.table_name, Key=_key(job_id), ConsistentRead=True
            )
        item = resp.get("Item")
        return from_item(item, lenient=lenient) if item else None

    def get_for_user(self, job_id: str, user_id: str) -> Job:
        """The job if it exists and belongs to ``user_id``; someone else's job is not found.
        What a user reads never fails on a damaged item (it is shown as well as it can be)."""
        job = self.get(job_id, lenient=True)
        if job is None or job.user_id != user_id:
            raise JobNotFound(job_id)
        return job

    def list_jobs(
        self,
        user_id: str,
        *,
        status: JobStatus | None = None,
        pipeline_name: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> JobPage:
        """Newest first, one user's jobs, optionally by status and/or pipeline."""
        filter_status = None
        if pipeline_name is not None:
            index, hash_value = _INDEX_BY_PIPELINE, f"{user_id}#{pipeline_name}"
            filter_status = status
        elif status is not None:
            index, hash_value = _INDEX_BY_STATUS, _status_key(user_id, status)
        else:
            index, hash_value = _INDEX_BY_USER, user_id
        hash_attr = _INDEX_HASH[index]
        start = (
            decode_cursor(cursor, hash_attr=hash_attr, hash_value=hash_value) if cursor else None
        )
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": "#h = :h",
            "ExpressionAttributeNames": {"#h": hash_attr},
            "ExpressionAttributeValues": {":h": {"S": hash_value}},
            "ScanIndexForward": False,
            # One extra item tells whether another page exists without an empty last page.
            "Limit": limit + 1,
        }
        if filter_status is not None:
            query["FilterExpression"] = "#s = :s"
            query["ExpressionAttributeNames"]["#s"] = "status"
            query["ExpressionAttributeValues"][":s"] = {"S": str(filter_status)}

        collected: list[dict[str, Any]] = []
        for _ in range(_MAX_PAGES_PER_LISTING):
            if start:
                query["ExclusiveStartKey"] = start
            with aws_errors(_DEPENDENCY):
                resp = self.client.query(**query)
            collected.extend(resp.get("Items", []))
            if len(collected) > limit:
                last = collected[limit - 1]
                key = {a: last[a] for a in ("id", "created_at", hash_attr)}
                return JobPage(jobs=self._read(collected[:limit]), next_cursor=encode_cursor(key))
            start = resp.get("LastEvaluatedKey")
            if not start:
                return JobPage(jobs=self._read(collected), next_cursor=None)
        # Page budget spent: hand back where the scan of the index stopped.
        return JobPage(jobs=self._read(collected), next_cursor=encode_cursor(start or {}))

    def _read(self, index_items: list[dict[str, Any]]) -> list[Job]:
        """The jobs an index page names, read by key (the indexes hold keys only, so a
        progress write touches no index), in the page's order. A job deleted meanwhile (its
        TTL) is left out."""
        ids = [item["id"]["S"] for item in index_items]
        keys = [_key(job_id) for job_id in dict.fromkeys(ids)]
        found: dict[str, dict[str, Any]] = {}
        left_over = 0
        while keys:
            if left_over:  # DynamoDB left keys unread: it is throttling
                if left_over > _BATCH_GET_RETRIES:
                    raise DependencyUnavailable(_DEPENDENCY, "reads left unprocessed (throttled)")
                time.sleep(0.05 * 2**left_over)
            batch, keys = keys[:_BATCH_GET_MAX], keys[_BATCH_GET_MAX:]
            with aws_errors(_DEPENDENCY):
                resp = self.client.batch_get_item(
                    RequestItems={self.table_name: {"Keys": batch, "ConsistentRead": True}}
                )
            for item in resp.get("Responses", {}).get(self.table_name, []):
                found[item["id"]["S"]] = item
            unread = resp.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
            left_over = left_over + 1 if unread else 0
            keys = unread + keys
        # Lenient: one damaged item never fails a listing; it shows what can be read.
        return [from_item(found[job_id], lenient=True) for job_id in ids if job_id in found]

    # -- writes -----------------------------------------------------------------------------

    def create(self, job: Job) -> Job:
        with aws_errors(_DEPENDENCY):
            try:
                self.client.put_item(
                    TableName=self.table_name,
                    Item=to_item(job, ttl_days=self.ttl_days),
                    ConditionExpression="attribute_not_exists(id)",
                )
            except Exception as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    raise JobAlreadyExists(job.id) from exc
                raise
        self.events.changed(job)
        return job

    def create_claimed(self, job: Job, *, lease_seconds: float) -> Job | None:
        """A job first seen by the consumer (a message from another system): written already
        claimed by this run, attempt 1, in one conditional put. None if the job exists (a
        redelivery, or the API made it): then claim it as usual."""
        now = utcnow()
        running = job.model_copy(
            update={
                "status": JobStatus.RUNNING,
                "started_at": now,
                "updated_at": now,
                "attempts": 1,
                "lease_expires_at": time.time() + lease_seconds,
                "cancel_requested": False,
            }
        )
        try:
            return self.create(running)
        except JobAlreadyExists:
            return None

    def _update(self, job_id: str, **write: Any) -> dict[str, Any] | None:
        """One conditional UpdateItem (``write``: see _write). Returns the new attributes, or
        None if the condition failed (the job is not in the expected state)."""
        try:
            return self._write(job_id, returns="ALL_NEW", **write)
        except _ConditionFailed:
            return None

    def _write(
        self,
        job_id: str,
        *,
        set_values: dict[str, Any],
        remove: tuple[str, ...] = (),
        condition: str,
        condition_values: dict[str, Any],
        returns: str,
    ) -> dict[str, Any]:
        """One conditional UpdateItem returning ``returns`` ("ALL_NEW" or "NONE"). A failed
        condition raises _ConditionFailed with the item as it was."""
        names = {"#s": "status"}
        values: dict[str, Any] = dict(condition_values)
        parts = []
        for i, (attr, value) in enumerate(set_values.items()):
            names[f"#a{i}"] = attr
            values[f":v{i}"] = value
            parts.append(f"#a{i} = :v{i}")
        expression = "SET " + ", ".join(parts)
        if set_values.get("status", {}).get("S") in _TERMINAL_VALUES:
            remove = (*remove, *_SWEEP_ATTRS)  # a finished job leaves the sweeper's index
        for i, attr in enumerate(remove):
            names[f"#r{i}"] = attr
        if remove:
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove)))
        with aws_errors(_DEPENDENCY):
            try:
                resp = self.client.update_item(
                    TableName=self.table_name,
                    Key=_key(job_id),
                    UpdateExpression=expression,
                    ConditionExpression=f"attribute_exists(id) AND ({condition})",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValues=returns,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except Exception as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    old = getattr(exc, "response", {}).get("Item") or {}
                    raise _ConditionFailed(old) from exc
                raise
        attributes: dict[str, Any] = resp.get("Attributes", {})
        return attributes

    @staticmethod
    def _owned(job: Job) -> dict[str, Any]:
        """The condition of a write by the run that claimed ``job``: its attempt number is the
        fencing token, so a run whose lease was taken over writes nothing."""
        return {
            "condition": _OWNED,
            "condition_values": {":running": {"S": "running"}, ":n": {"N": str(job.attempts)}},
        }

    def _update_owned(self, job: Job, values: dict[str, Any]) -> dict[str, Any] | None:
        return self._update(job.id, set_values=values, **self._owned(job))

    def _status_values(self, job: Job, status: JobStatus) -> dict[str, Any]:
        now = iso(utcnow())
        return {
            "status": {"S": str(status)},
            "user_status": {"S": _status_key(job.user_id, status)},
            "updated_at": {"S": now},
        }

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
            claimed = self._claim_pending(job_id, user_id, lease_seconds)
            if claimed is not None:
                return Claim(ClaimOutcome.CLAIMED, claimed)
        for _ in range(3):
            job = self.get(job_id)
            if job is None:
                return Claim(ClaimOutcome.NOT_FOUND, None)
            if job.status in TERMINAL:
                return Claim(ClaimOutcome.FINISHED, job)
            now = time.time()
            condition_values: dict[str, Any] = {
                ":expected": {"S": str(job.status)},
                ":n": {"N": str(job.attempts)},
            }
            # The attempt count we read is part of the condition: of two consumers that race
            # for one job, exactly one write succeeds.
            condition = "#s = :expected AND attempts = :n"
            continuing = job.status is JobStatus.RUNNING and job.handed_off
            if continuing:
                # Its last segment saved a checkpoint and let go: the next one starts now.
                condition += " AND handed_off = :yes AND cancel_requested = :no"
                condition_values[":yes"] = {"BOOL": True}
                condition_values[":no"] = {"BOOL": False}
                if job.cancel_requested:
                    cancelled = self.cancel_abandoned(job)
                    if cancelled is not None:
                        return Claim(ClaimOutcome.FINISHED, cancelled)
                    continue
            elif job.status is JobStatus.RUNNING:
                if (job.lease_expires_at or 0.0) > now:
                    return Claim(ClaimOutcome.BUSY, job)
                if job.cancel_requested:  # asked while its consumer was gone: it ends here
                    cancelled = self.cancel_abandoned(job)
                    if cancelled is not None:
                        return Claim(ClaimOutcome.FINISHED, cancelled)
                    continue
                if job.crashed_attempts >= max_attempts:
                    failed = self.fail_exhausted(job, max_attempts)
                    if failed is not None:
                        return Claim(ClaimOutcome.EXHAUSTED, failed)
                    continue
                # Taken over only while still abandoned: not if a heartbeat extended the
                # lease, or a cancel arrived, since the read.
                condition += " AND lease_expires_at < :now AND cancel_requested = :no"
                condition_values[":now"] = {"N": repr(now)}
                condition_values[":no"] = {"BOOL": False}
            values = self._status_values(job, JobStatus.RUNNING)
            values.update(
                {
                    "attempts": {"N": str(job.attempts + 1)},
                    "lease_expires_at": {"N": repr(now + lease_seconds)},
                    "cancel_requested": {"BOOL": False},
                    **_sweep(JobStatus.RUNNING, now + lease_seconds),
                }
            )
            if continuing:  # the job started with its first segment
                values["handed_off"] = {"BOOL": False}
                values["continuations"] = {"N": str(job.continuations + 1)}
            else:
                values["started_at"] = {"S": iso(utcnow())}
            attrs = self._update(
                job_id,
                set_values=values,
                remove=("error_message",),
                condition=condition,
                condition_values=condition_values,
            )
            if attrs is not None:
                return Claim(ClaimOutcome.CLAIMED, self._changed(from_item(attrs)))
        job = self.get(job_id)
        return Claim(ClaimOutcome.BUSY if job else ClaimOutcome.NOT_FOUND, job)

    def _claim_pending(self, job_id: str, user_id: str, lease_seconds: float) -> Job | None:
        now = iso(utcnow())
        lease_end = time.time() + lease_seconds
        attrs = self._update(
            job_id,
            set_values={
                "status": {"S": str(JobStatus.RUNNING)},
                "user_status": {"S": _status_key(user_id, JobStatus.RUNNING)},
                "updated_at": {"S": now},
                "started_at": {"S": now},
                "attempts": {"N": "1"},
                "lease_expires_at": {"N": repr(lease_end)},
                "cancel_requested": {"BOOL": False},
                **_sweep(JobStatus.RUNNING, lease_end),
            },
            condition="#s = :pending AND user_id = :user AND attempts = :zero",
            condition_values={
                ":pending": {"S": "pending"},
                ":user": {"S": user_id},
                ":zero": {"N": "0"},
            },
        )
        return self._changed(from_item(attrs)) if attrs else None

    def fail_exhausted(self, job: Job, max_attempts: int) -> Job | None:
        """A running job whose lease expired on its last allowed attempt: failed, saying so
        (None if it changed meanwhile)."""
        message = (
            f"Job gave up after {job.attempts} attempt(s): its worker stopped without finishing "
            f"(crashed or was killed) each time, and the maximum is {max_attempts}"
        )
        return self._end_abandoned(job, JobStatus.FAILED, message)

    def cancel_abandoned(self, job: Job) -> Job | None:
        """A running job with a cancel asked and no live consumer (its lease expired, or it
        is between two segments): it ends cancelled now, and a later claim finds it finished
        (None if it changed)."""
        message = (
            "Cancelled by the user between two segments of its run; it will not run again"
            if job.handed_off
            else "Cancelled by the user while its consumer was gone; it will not run again"
        )
        return self._end_abandoned(job, JobStatus.CANCELLED, message)

    def _end_abandoned(self, job: Job, status: JobStatus, message: str) -> Job | None:
        values = self._status_values(job, status)
        values.update({"error_message": {"S": message}, "completed_at": values["updated_at"]})
        owned = self._owned(job)
        attrs = self._update(
            job.id,
            set_values=values,
            condition=f"{owned['condition']} AND (lease_expires_at < :now OR handed_off = :yes)",
            condition_values={
                **owned["condition_values"],
                ":now": {"N": repr(time.time())},
                ":yes": {"BOOL": True},
            },
        )
        return self._changed(from_item(attrs, lenient=True)) if attrs else None

    def heartbeat(self, job: Job, *, lease_seconds: float) -> bool | None:
        """The running consumer extends its lease. Returns whether a cancel was requested
        (the lease is extended all the same: the consumer is alive and stops at the next
        node), or None if this run no longer owns the job. One write, two if a cancel was
        asked."""
        lease_end = {"N": repr(time.time() + lease_seconds)}
        extend = {"lease_expires_at": lease_end, "sweep_due": lease_end}
        owned = self._owned(job)
        try:
            self._write(
                job.id,
                set_values=extend,
                condition=f"{owned['condition']} AND cancel_requested = :no",
                condition_values={**owned["condition_values"], ":no": {"BOOL": False}},
                returns="NONE",
            )
        except _ConditionFailed as failed:
            old = failed.item
            if old.get("status") != {"S": "running"} or old.get("attempts") != {
                "N": str(job.attempts)
            }:
                return None
            return True if self._update_owned(job, extend) is not None else None
        return False

    def report_progress(self, job: Job, progress: Progress) -> bool | None:
        """Record progress: one write per node. Returns whether a cancel was requested, or
        None if this run no longer owns the job (its lease was taken over). Nothing comes
        back from a write that succeeds; a requested cancel fails it and the item says why."""
        written = utcnow()
        try:
            self._write(
                job.id,
                set_values={
                    "progress": {"S": progress.model_dump_json()},
                    "updated_at": {"S": iso(written)},
                },
                condition="#s = :running AND attempts = :n AND cancel_requested = :no",
                condition_values={
                    ":running": {"S": "running"},
                    ":n": {"N": str(job.attempts)},
                    ":no": {"BOOL": False},
                },
                returns="NONE",
            )
        except _ConditionFailed as failed:
            old = failed.item
            owned = old.get("status") == {"S": "running"} and old.get("attempts") == {
                "N": str(job.attempts)
            }
            return True if owned else None
        self.events.progressed(job.model_copy(update={"progress": progress, "updated_at": written}))
        return False

    def finish(
        self,
        job: Job,
        status: JobStatus,
        *,
        results: dict[str, Any] | None = None,
        results_location: str | None = None,
        outputs: list[dict[str, Any]] | None = None,
        outputs_location: str | None = None,
        error_message: str | None = None,
        execution_time: float | None = None,
        progress: Progress | None = None,
        log_location: str | None = None,
        segments: list[Segment] | None = None,
    ) -> Job | None:
        """running -> completed | failed | cancelled, by the run that owns the job."""
        assert status in TERMINAL
        values = self._status_values(job, status)
        values["completed_at"] = values["updated_at"]
        optional = {
            "results": {"S": json.dumps(results, separators=(",", ":"))} if results else None,
            "results_location": _av(results_location) if results_location else None,
            "outputs": {"S": json.dumps(outputs, separators=(",", ":"))} if outputs else None,
            "outputs_location": _av(outputs_location) if outputs_location else None,
            "error_message": _av(error_message) if error_message else None,
            "execution_time": _av(float(execution_time)) if execution_time is not None else None,
            "progress": {"S": progress.model_dump_json()} if progress else None,
            "log_location": _av(log_location) if log_location else None,
            "segments": _segments(segments) if segments else None,
        }
        values.update({k: v for k, v in optional.items() if v is not None})
        try:
            # Nothing comes back (the results can be 32 KB): the record is what was written.
            self._write(job.id, set_values=values, returns="NONE", **self._owned(job))
        except _ConditionFailed:
            return None
        return self._changed(from_item({**to_item(job), **values}))

    def hand_off(
        self,
        job: Job,
        *,
        checkpoint: str | None,
        segments: list[Segment],
        progress: Progress,
        lease_seconds: float,
        compute: Compute | None = None,
    ) -> Job | None:
        """The run that owns ``job`` saved a checkpoint and lets go: the job stays running,
        handed off, for the next segment to claim at once. Its lease is a grace period: if
        no segment claims it by then (the continuation message was lost), the sweeper sends
        it again. None if this run no longer owns the job."""
        lease_end = time.time() + lease_seconds
        values = {
            "segments": _segments(segments),
            "progress": {"S": progress.model_dump_json()},
            "handed_off": {"BOOL": True},
            "lease_expires_at": {"N": repr(lease_end)},
            "updated_at": {"S": iso(utcnow())},
            **_sweep(JobStatus.RUNNING, lease_end),
        }
        if checkpoint:
            values["checkpoint"] = {"S": checkpoint}
        if compute:
            values["compute"] = {"S": compute}
        try:
            self._write(job.id, set_values=values, returns="NONE", **self._owned(job))
        except _ConditionFailed:
            return None
        return self._changed(from_item({**to_item(job), **values}))

    def mark_dispatched(self, job_id: str, *, until: float) -> bool:
        """A Fargate task is about to be asked for this job: True if this caller may ask (the
        job waits for a task, and none was asked for since ``dispatch_due`` passed), so two
        deliveries of one message start one task. ``until``: when it may be asked again (the
        task did not claim it by then); the sweeper waits as long."""
        now = {"N": repr(time.time())}
        try:
            self._write(
                job_id,
                set_values={"dispatch_due": {"N": repr(until)}, "sweep_due": {"N": repr(until)}},
                condition=(
                    "(#s = :pending OR (#s = :running AND "
                    "(lease_expires_at < :now OR handed_off = :yes))) AND "
                    "(attribute_not_exists(dispatch_due) OR dispatch_due < :now)"
                ),
                condition_values={
                    ":pending": {"S": "pending"},
                    ":running": {"S": "running"},
                    ":now": now,
                    ":yes": {"BOOL": True},
                },
                returns="NONE",
            )
        except _ConditionFailed:
            return False
        return True

    def dispatched(self, job_id: str, *, task_arn: str | None) -> None:
        """The task that was asked for (its ARN), or None if asking failed: then another
        delivery may ask at once."""
        values = {"task_arn": {"S": task_arn}} if task_arn else {"dispatch_due": {"N": "0"}}
        self._update(
            job_id, set_values=values, condition="attribute_exists(#s)", condition_values={}
        )

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
        values = self._status_values(job, JobStatus.FAILED)
        values.update({"error_message": {"S": error_message}, "completed_at": values["updated_at"]})
        condition = "#s = :pending OR (#s = :running AND attempts = :n"
        condition += " AND lease_expires_at < :now)" if only_if_lease_expired else ")"
        condition_values = {
            ":pending": {"S": "pending"},
            ":running": {"S": "running"},
            ":n": {"N": str(job.attempts)},
        }
        if only_if_lease_expired:
            condition_values[":now"] = {"N": repr(time.time())}
        attrs = self._update(
            job_id, set_values=values, condition=condition, condition_values=condition_values
        )
        return self._changed(from_item(attrs, lenient=True)) if attrs else None

    def request_cancel(self, job_id: str, user_id: str) -> Job:
        """pending -> cancelled at once; running -> cancel_requested (the consumer stops at
        the next node boundary); terminal -> InvalidTransition."""
        for _ in range(5):
            job = self.get_for_user(job_id, user_id)
            if job.status in TERMINAL:
                raise InvalidTransition(job_id, job.status, "cancelled")
            if job.status is JobStatus.PENDING:
                values = self._status_values(job, JobStatus.CANCELLED)
                values["completed_at"] = values["updated_at"]
                values["error_message"] = {"S": "Cancelled by the user before it started"}
                attrs = self._update(
                    job_id,
                    set_values=values,
                    condition="#s = :pending",
                    condition_values={":pending": {"S": "pending"}},
                )
            elif job.handed_off or (job.lease_expires_at or 0.0) < time.time():
                # No live consumer holds it: nothing would see the flag, so it ends now.
                attrs = None
                cancelled = self.cancel_abandoned(job)
                if cancelled is not None:
                    return cancelled
            else:
                attrs = self._update(
                    job_id,
                    set_values={
                        "cancel_requested": {"BOOL": True},
                        "updated_at": {"S": iso(utcnow())},
                    },
                    condition="#s = :running",
                    condition_values={":running": {"S": "running"}},
                )
            if attrs is not None:
                changed = from_item(attrs, lenient=True)
                self.events.changed(changed)
                return changed
        raise InvalidTransition(job_id, "changing", "cancelled")  # pragma: no cover

    # -- the sweeper ------------------------------------------------------------------------

    def stranded(self, status: JobStatus, *, due_before: float, limit: int = 100) -> list[Stranded]:
        """Live jobs of ``status`` whose ``sweep_due`` is before ``due_before``, oldest first:
        a Query on the sparse sweep index (never a Scan), then each job read by key."""
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": _INDEX_SWEEP,
            "KeyConditionExpression": "sweep = :s AND sweep_due < :t",
            "ExpressionAttributeValues": {
                ":s": {"S": str(status)},
                ":t": {"N": repr(float(due_before))},
            },
            "Limit": limit,
        }
        found: list[Stranded] = []
        while len(found) < limit:
            with aws_errors(_DEPENDENCY):
                resp = self.client.query(**query)
            for key in resp.get("Items", []):
                with aws_errors(_DEPENDENCY):
                    item = self.client.get_item(
                        TableName=self.table_name,
                        Key=_key(key["id"]["S"]),
                        ConsistentRead=True,
                    ).get("Item")
                if item is None or item.get("sweep") != {"S": str(status)}:
                    continue  # finished or moved on since the index was written
                found.append(
                    Stranded(
                        job=from_item(item, lenient=True),
                        due=float(item["sweep_due"]["N"]),
                        resends=int(item.get("resends", {}).get("N", "0")),
                    )
                )
            if not resp.get("LastEvaluatedKey"):
                break
            query["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return found[:limit]

    def mark_resent(self, stranded: Stranded, *, next_due: float) -> bool:
        """The sweeper takes a stranded job before sending its message again: True if the job
        is as it was found (same status, attempt and ``sweep_due``), so of two sweepers only
        one sends, and none once a consumer has claimed it or beaten its heartbeat."""
        job = stranded.job
        try:
            self._write(
                job.id,
                set_values={
                    "sweep_due": {"N": repr(float(next_due))},
                    "resends": {"N": str(stranded.resends + 1)},
                },
                condition="#s = :status AND attempts = :n AND sweep_due = :due",
                condition_values=self._stranded_values(stranded),
                returns="NONE",
            )
        except _ConditionFailed:
            return False
        return True

    def fail_stranded(self, stranded: Stranded, error_message: str) -> Job | None:
        """A pending job the sweeper gave up on: failed, if it is still as it was found."""
        job = stranded.job
        values = self._status_values(job, JobStatus.FAILED)
        values.update({"error_message": {"S": error_message}, "completed_at": values["updated_at"]})
        attrs = self._update(
            job.id,
            set_values=values,
            condition="#s = :status AND attempts = :n AND sweep_due = :due",
            condition_values=self._stranded_values(stranded),
        )
        return self._changed(from_item(attrs, lenient=True)) if attrs else None

    @staticmethod
    def _stranded_values(stranded: Stranded) -> dict[str, Any]:
        return {
            ":status": {"S": str(stranded.job.status)},
            ":n": {"N": str(stranded.job.attempts)},
            ":due": {"N": repr(float(stranded.due))},
        }

    def ping(self) -> None:
        with aws_errors(_DEPENDENCY):
            self.client.describe_table(TableName=self.table_name)


_OWNED = "#s = :running AND attempts = :n"


def _segments(segments: list[Segment]) -> dict[str, Any]:
    return {"S": json.dumps([s.model_dump(mode="json") for s in segments], separators=(",", ":"))}


class _ConditionFailed(Exception):
    def __init__(self, item: dict[str, Any]) -> None:
        super().__init__("condition failed")
        self.item = item  # the item as it was ({} if it does not exist)
