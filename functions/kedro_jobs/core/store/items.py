"""The item schema: how a job and the store's own attributes are kept in DynamoDB, and the
codecs both ways. Every attribute value the store sends is made by ``encode`` from this one
table, so no write spells out ``{"S": ...}`` by hand.

Free-form values (parameters, results, options, progress, outputs, segments) are stored as
JSON strings: exact round-trips (floats stay floats) and no Decimal conversions. That is also
why this is a table and not boto3's TypeSerializer: it takes no floats (Decimal only), and
its reads give Decimals where a job has ints and floats.
"""

from __future__ import annotations

import contextlib
import json
import time
from datetime import timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from kedro_jobs.core.models import Job, iso, utcnow
from kedro_jobs.core.requests import check_nesting
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import texts
from kedro_jobs.core.timeline import combine_groups, expected_fan_out_end, pack, unpack

AttributeValue = dict[str, Any]


class Kind(Enum):
    JSON = "json"  # S: compact JSON
    TIME = "time"  # S: ISO 8601
    INT = "int"  # N
    FLOAT = "float"  # N, exactly (repr)
    NODES = "nodes"  # S: the node timeline's compact rows (core/timeline.py)
    MAP = "map"  # M: a native map, so one group of a fanned-out job is written on its own


# Attributes not named here are kept by their Python type: bool as BOOL, numbers as N, the
# rest (text, statuses) as S.
SCHEMA: dict[str, Kind] = {
    **dict.fromkeys(
        ("parameters", "results", "options", "progress", "outputs", "segments"), Kind.JSON
    ),
    "nodes": Kind.NODES,
    "eta": Kind.TIME,
    "nodes_omitted": Kind.INT,
    **dict.fromkeys(("created_at", "started_at", "completed_at", "updated_at"), Kind.TIME),
    "scheduled_for": Kind.TIME,
    "reusable_until": Kind.TIME,  # rerun from failure (core/rerun.py)
    # The store's own: ``looks`` (sweeps that found the pending job untaken with no consumer
    # working; liveness.py), ``expires_at``
    # (the table's TTL, epoch seconds).
    **dict.fromkeys(("attempts", "max_job_seconds", "continuations", "looks"), Kind.INT),
    "expires_at": Kind.INT,
    # ``sweep_due``: when the sweeper looks at a live job again (see listing.py).
    **dict.fromkeys(("lease_expires_at", "execution_time", "dispatch_due"), Kind.FLOAT),
    "sweep_due": Kind.FLOAT,
    "fan_out": Kind.JSON,
    "reuse_plan": Kind.JSON,  # a fanned-out job's rerun from failure (core/rerun.py)
    "groups": Kind.MAP,
}
JSON_FIELDS = frozenset(name for name, kind in SCHEMA.items() if kind is Kind.JSON)


def to_native(value: Any) -> AttributeValue:
    """A JSON-like value as a native DynamoDB attribute (numbers exact, via their repr)."""
    from boto3.dynamodb.types import TypeSerializer

    plain = json.loads(json.dumps(to_jsonable_python(value)), parse_float=Decimal)
    serialized: Any = TypeSerializer().serialize(plain)
    return dict(serialized)


def from_native(attr: AttributeValue) -> Any:
    from boto3.dynamodb.types import TypeDeserializer

    def plain(value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    native: Any = attr
    return plain(TypeDeserializer().deserialize(native))


def encode(name: str, value: Any) -> AttributeValue:
    """The attribute value of ``name`` holding ``value``."""
    kind = SCHEMA.get(name)
    if kind is Kind.JSON:
        return {"S": json.dumps(to_jsonable_python(value), separators=(",", ":"))}
    if kind is Kind.TIME:
        return {"S": iso(value)}
    if kind is Kind.NODES:
        return {"S": json.dumps(pack(value), separators=(",", ":"))}
    if kind is Kind.MAP:
        return to_native(value)
    if kind is Kind.INT:
        return {"N": str(int(value))}
    if kind is Kind.FLOAT or isinstance(value, float):
        return {"N": repr(float(value))}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    return {"S": str(value)}


def encode_all(values: dict[str, Any]) -> dict[str, AttributeValue]:
    return {name: encode(name, value) for name, value in values.items()}


def decode(name: str, attr: AttributeValue) -> Any:
    """The value an attribute holds. Raises ValueError (or KeyError, TypeError) on one that
    does not decode."""
    if "BOOL" in attr:
        return attr["BOOL"]
    if SCHEMA.get(name) is Kind.MAP:
        return from_native(attr)
    if "N" in attr:
        number = attr["N"]
        return int(number) if SCHEMA.get(name) is Kind.INT else float(number)
    if SCHEMA.get(name) is Kind.NODES:
        return unpack(json.loads(attr["S"]))
    if name in JSON_FIELDS:
        try:
            return json.loads(attr["S"])
        except RecursionError as exc:  # deeper than the interpreter's stack
            raise ValueError(f"{name} is nested too deeply to read") from exc
        except ValueError as exc:
            raise ValueError(f"{name} is not JSON") from exc
    return attr["S"]


def key(job_id: str) -> dict[str, AttributeValue]:
    return {"id": encode("id", job_id)}


# -- the store's own attributes, derived from the job's ---------------------------------------


def status_key(user_id: str, status: JobStatus | str) -> str:
    """``user_status``: the hash key of the by-status index."""
    return f"{user_id}#{status}"


def pipeline_key(user_id: str, pipeline_name: str) -> str:
    """``user_pipeline``: the hash key of the by-pipeline index."""
    return f"{user_id}#{pipeline_name}"


def schedule_key(user_id: str, schedule: str) -> str:
    """``user_schedule``: the hash key of the by-schedule index (a schedule's runs)."""
    return f"{user_id}#{schedule}"


def sweep(status: JobStatus, due: float) -> dict[str, Any]:
    """A live job's entry in the sweeper's index: its status, and when it is due."""
    return {"sweep": status, "sweep_due": due}


def status_change(user_id: str, status: JobStatus) -> dict[str, Any]:
    """The values a write that moves a job to ``status`` sets, ending it if terminal (its
    sweep attributes are removed by the write itself, see table.py)."""
    now = utcnow()
    values: dict[str, Any] = {
        "status": status,
        "user_status": status_key(user_id, status),
        "updated_at": now,
    }
    if status.terminal:
        values["completed_at"] = now
    return values


def to_item(job: Job, *, ttl_days: int = 0) -> dict[str, AttributeValue]:
    data = job.model_dump(mode="python")
    as_json = job.model_dump(mode="json", include=set(JSON_FIELDS))
    values = {
        name: as_json[name] if name in JSON_FIELDS else value
        for name, value in data.items()
        if value is not None
    }
    values["user_status"] = status_key(job.user_id, job.status)
    values["user_pipeline"] = pipeline_key(job.user_id, job.pipeline_name)
    if job.schedule is not None:
        values["user_schedule"] = schedule_key(job.user_id, job.schedule)
    if job.status is JobStatus.PENDING:
        values.update(sweep(job.status, job.created_at.timestamp()))
    elif job.status is JobStatus.RUNNING:
        values.update(sweep(job.status, job.lease_expires_at or time.time()))
    if ttl_days:
        values["expires_at"] = int((job.created_at + timedelta(days=ttl_days)).timestamp())
    return encode_all(values)


def from_item(item: dict[str, AttributeValue], *, lenient: bool = False) -> Job:
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
    job = job.model_copy(update={"error_message": texts.unreadable(left_out, job.error_message)})
    job._unreadable = tuple(sorted(left_out))
    return job


def _fields(item: dict[str, AttributeValue], left_out: dict[str, str] | None) -> dict[str, Any]:
    """The item's attributes as the record's field values. Given ``left_out`` (lenient), an
    attribute that cannot be decoded is noted there, with why, instead of raising."""
    data: dict[str, Any] = {}
    for name in Job.model_fields:
        attr = item.get(name)
        if attr is None or "NULL" in attr:
            continue
        if left_out is None:
            data[name] = decode(name, attr)
            continue
        try:
            data[name] = decode(name, attr)
            if name in JSON_FIELDS:
                check_nesting(name, data[name])
        except ValueError as exc:
            data.pop(name, None)
            left_out[name] = str(exc) if name in JSON_FIELDS else "not a valid value"
        except (KeyError, TypeError, AttributeError, RecursionError):
            data.pop(name, None)
            left_out[name] = "not a valid value"
    _group_nodes(data)
    return data


def _group_nodes(data: dict[str, Any]) -> None:
    """A fanned-out job's ``nodes``: its groups' parts of the timeline, combined (each group
    writes only its own, core/timeline.py)."""
    groups = data.get("groups")
    if not isinstance(groups, dict):
        return
    plan = data.get("fan_out")
    levels = plan.get("levels") if isinstance(plan, dict) else None
    combined = combine_groups(groups, levels if isinstance(levels, list) else ())
    if combined is not None:
        data["nodes"], data["nodes_omitted"] = combined
    if data.get("status") == JobStatus.RUNNING and isinstance(plan, dict):
        # Its ETA, from the plan's past durations and how far its groups are, as read now.
        with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
            data["eta"] = expected_fan_out_end(plan, groups, data.get("nodes") or [], utcnow())


def _fill_placeholders(data: dict[str, Any], left_out: dict[str, str]) -> None:
    for name, placeholder in texts.PLACEHOLDERS.items():
        if name not in data:
            data[name] = placeholder
            left_out.setdefault(name, "missing")


def _what_validates(
    item: dict[str, AttributeValue],
    data: dict[str, Any],
    error: ValidationError,
    left_out: dict[str, str],
) -> Job:
    """The record without the fields that failed validation (lenient reads only)."""
    for detail in error.errors(include_url=False, include_input=False):
        name = str(detail["loc"][0]) if detail["loc"] else ""
        if name in data:
            del data[name]
            # Why, for a value accepted once and no longer (an option's limit added since).
            where = ".".join(str(part) for part in detail["loc"])
            left_out[name] = f"not a valid value: {where}: {detail['msg']}"
    _fill_placeholders(data, left_out)
    try:
        return Job.model_validate(data)
    except ValidationError:
        job_id = str((item.get("id") or {}).get("S", texts.UNREADABLE_ID))
        left_out.setdefault("id", "not a valid value")
        return Job.model_validate({"id": job_id, **texts.PLACEHOLDERS})
