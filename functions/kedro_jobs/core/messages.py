"""Reading a job message out of an SQS record body, with a clear reason when it can't be
(the consumer and the dead-letter function read the same bodies), and what a message may do:
only change a job its sender could have made, and never make one for a reserved name."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from kedro_jobs.core.models import Job
from kedro_jobs.core.queue import MAX_MESSAGE_BYTES  # anything larger is not from SQS
from kedro_jobs.core.requests import JobMessage
from kedro_jobs.names import ANONYMOUS, JOB_ID, reserved_user


@dataclass(frozen=True)
class BadMessage:
    reason: str
    job_id: str | None  # the job it names, if it names one, so that job can be failed
    user_id: str | None = None  # who it says sent it, if it says so readably


class RefusedMessage(Exception):
    """A readable message that may not do what it asks (see ``refusal``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_may_create(message: JobMessage, key: str) -> None:
    """RefusedMessage if ``message`` may not make its job (``key``: the deployment's
    signing key, which checks a schedule's sealed owner)."""
    why = refusal(message, key)
    if why is not None:
        raise RefusedMessage(why)


def sender(user_id: str | None) -> str:
    """Whom a message speaks for: its ``user_id``, or "anonymous" (the API's own messages
    always say)."""
    return user_id or ANONYMOUS


def may_change(job: Job, user_id: str | None) -> bool:
    """A message may only change a job its sender could have made: the owner's own."""
    return job.user_id == sender(user_id)


def owner_seal(key: str, user_id: str, schedule: str) -> str:
    """The API's seal on a schedule's messages: that this owner made this schedule. Keyed
    apart from checkpoint signatures (a key derived for this one use)."""
    sealing = hmac.new(key.encode(), b"kedro-jobs schedule owner", hashlib.sha256).digest()
    signed = json.dumps([user_id, schedule]).encode()
    return hmac.new(sealing, signed, hashlib.sha256).hexdigest()


def _sealed(message: JobMessage, key: str) -> bool:
    if not (key and message.user_id and message.schedule and message.owner_seal):
        return False
    expected = owner_seal(key, message.user_id, message.schedule)
    return hmac.compare_digest(expected, message.owner_seal)


def refusal(message: JobMessage, key: str) -> str | None:
    """Why ``message`` may not make a job, or None: a reserved name as its ``user_id`` (no
    caller of the API may pass as the shared anonymous owner or as a machine client: 403),
    unless it is a schedule's fire that the API sealed for that owner."""
    if message.user_id is not None and reserved_user(message.user_id):
        if _sealed(message, key):
            return None
        return (
            f"user_id {message.user_id[:64]!r} is a reserved name; a queue message may not "
            "make a job for it (the API refuses it with 403): leave user_id out, or name a user"
        )
    return None


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
    named = job_id if isinstance(job_id, str) and JOB_ID.match(job_id) else None
    user_id = data.get("user_id")
    said = user_id if isinstance(user_id, str) and user_id else None
    try:
        return JobMessage.model_validate(data)
    except ValidationError as exc:
        return BadMessage(f"invalid job message: {_describe(exc)}", named, said)
