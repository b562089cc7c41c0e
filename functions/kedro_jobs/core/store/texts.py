"""What the store writes for people to read: the messages of the endings it decides itself,
and the note on a record that could not be read whole."""

from __future__ import annotations

CANCELLED_BEFORE_START = "Cancelled by the user before it started"
CANCELLED_BETWEEN_SEGMENTS = (
    "Cancelled by the user between two segments of its run; it will not run again"
)
CANCELLED_WHILE_GONE = "Cancelled by the user while its consumer was gone; it will not run again"

# A record needs these; a damaged item still shows its id, and placeholders for the rest.
# An owner that cannot be read is no one ("" is no caller's identity), never "anonymous".
PLACEHOLDERS: dict[str, str] = {
    "pipeline_name": "(unreadable)",
    "created_at": "1970-01-01T00:00:00Z",
    "user_id": "",
}
UNREADABLE_ID = "(unreadable)"


def gave_up(attempts: int, max_attempts: int) -> str:
    return (
        f"Job gave up after {attempts} attempt(s): its worker stopped without finishing "
        f"(crashed or was killed) each time, and the maximum is {max_attempts}"
    )


def lost_fan_out_task(what: str, deliveries: int, last_error: str | None) -> str:
    """Why a fanned-out job failed when its execution's message ``what`` (a group's, the
    commit's, the discard's) ended on the dead-letter queue."""
    why = last_error or "the consumer's log of those deliveries says why"
    return f"{what} could not be processed after {deliveries} deliveries: {why}"


def cancelled_abandoned(handed_off: bool) -> str:
    return CANCELLED_BETWEEN_SEGMENTS if handed_off else CANCELLED_WHILE_GONE


def unreadable(left_out: dict[str, str], error_message: str | None) -> str:
    """The record's ``error_message`` once the fields in ``left_out`` were left out."""
    note = "Part of this job's stored record could not be read and is not shown: " + "; ".join(
        f"{name} ({why})" for name, why in sorted(left_out.items())
    )
    return f"{error_message} ({note})" if error_message else note
