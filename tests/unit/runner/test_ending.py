"""How a run ends and what becomes of its job: the decision table, in one module."""

from __future__ import annotations

import pytest

from kedro_jobs.runner.ending import NO_CHECKPOINT_MESSAGE, Settled, Verdict, settle, verdict
from kedro_jobs.runner.types import CANCELLED_MESSAGE, RunOutcome, Status

OVER = "Job exceeded its own limit"


def _outcome(
    status: Status,
    error: str | None = "E",
    checkpoint: str | None = None,
    handed_back: bool = False,
) -> RunOutcome:
    return RunOutcome(status, None, error, "", 0.0, checkpoint=checkpoint, handed_back=handed_back)


@pytest.mark.parametrize(
    ("status", "error", "facts", "settled"),
    [
        ("completed", None, {}, Settled("completed", None)),
        ("completed", None, {"commit_error": "C"}, Settled("failed", "C")),
        ("failed", "E", {"commit_error": None}, Settled("failed", "E")),
        ("continued", None, {"checkpoint": "s3://c/1"}, Settled("continued", None)),
        ("continued", None, {}, Settled("failed", NO_CHECKPOINT_MESSAGE)),
        ("timed_out", "T", {}, Settled("timed_out", "T")),
        ("timed_out", "T", {"handing_back": True}, Settled("timed_out", "T", handed_back=True)),
        ("cancelled", "X", {"handing_back": True}, Settled("cancelled", "X")),
    ],
)
def test_a_runs_status_once_its_attempt_is_over(
    status: Status, error: str | None, facts: dict[str, object], settled: Settled
) -> None:
    assert settle(status, error, **facts) == settled  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outcome", "facts", "expected"),
    [
        (_outcome("completed", None), {}, Verdict("end", "completed", "completed", None)),
        (_outcome("failed"), {}, Verdict("end", "failed", "failed", "E")),
        (
            _outcome("cancelled", None),
            {},
            Verdict("end", "cancelled", "cancelled", CANCELLED_MESSAGE),
        ),
        (_outcome("cancelled", "taken"), {}, Verdict("end", "cancelled", "cancelled", "taken")),
        (_outcome("timed_out"), {}, Verdict("end", "failed", "failed", "E")),
        (_outcome("timed_out"), {"may_move": True}, Verdict("move", "timed_out")),
        (_outcome("timed_out"), {"over_limit": OVER}, Verdict("end", "failed", "failed", OVER)),
        (
            _outcome("timed_out"),
            {"may_move": True, "over_limit": OVER},
            Verdict("end", "failed", "failed", OVER),
        ),
        (
            _outcome("timed_out", handed_back=True),
            {"may_move": True},
            Verdict("hand_back", "handed_back"),
        ),
        (_outcome("continued", None, "s3://c/1"), {}, Verdict("continue", "continued")),
        (
            _outcome("continued", None),
            {},
            Verdict("end", "failed", "failed", NO_CHECKPOINT_MESSAGE),
        ),
        # A limit that binds ends nothing but a run out of time.
        (
            _outcome("completed", None),
            {"over_limit": OVER},
            Verdict("end", "completed", "completed"),
        ),
        (_outcome("continued", None, "c"), {"over_limit": OVER}, Verdict("continue", "continued")),
    ],
)
def test_what_becomes_of_the_job_after_a_run(
    outcome: RunOutcome, facts: dict[str, object], expected: Verdict
) -> None:
    assert verdict(outcome, **facts) == expected  # type: ignore[arg-type]
