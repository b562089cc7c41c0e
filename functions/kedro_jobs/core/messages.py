"""Reading a job message out of an SQS record body, with a clear reason when it can't be
(the consumer and the dead-letter function read the same bodies)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from kedro_jobs.core.queue import MAX_MESSAGE_BYTES  # anything larger is not from SQS
from kedro_jobs.core.requests import JobMessage

_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class BadMessage:
    reason: str
    job_id: str | None  # the job it names, if it names one, so that job can be failed


def _unwrap_sns(data: Any) -> Any:
    """An SNS notification delivered to SQS without raw delivery wraps the real body."""
    if (
        isinstance(data, dict)
        and data.get("Type") == "Notification"
        and isinstance(data.get("Message"), str)
    ):
        try:
            return json.loads(data["Message"])
        except (ValueError, RecursionError):
            return data["Message"]
    return data


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def parse_body(body: str) -> JobMessage | BadMessage:
    if len(body.encode("utf-8", errors="replace")) > MAX_MESSAGE_BYTES:
        return BadMessage(f"message body is over {MAX_MESSAGE_BYTES} bytes", None)
    try:
        data = _unwrap_sns(json.loads(body))
    except ValueError as exc:
        return BadMessage(f"message body is not JSON ({exc})", None)
    except RecursionError:  # `[[[[...`: deeper than the interpreter's stack
        return BadMessage("message body nests too deeply to read", None)
    if not isinstance(data, dict):
        return BadMessage(f"message body is a JSON {type(data).__name__}, not an object", None)
    job_id = data.get("job_id")
    named = job_id if isinstance(job_id, str) and _JOB_ID.match(job_id) else None
    try:
        return JobMessage.model_validate(data)
    except ValidationError as exc:
        return BadMessage(f"invalid job message: {_describe(exc)}", named)
