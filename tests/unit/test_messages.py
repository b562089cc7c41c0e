"""Reading queue message bodies, including ones no one planned for."""

from __future__ import annotations

import json

import pytest

from kedro_jobs.core.messages import BadMessage, parse_body
from kedro_jobs.core.requests import JobMessage


def test_good_message() -> None:
    parsed = parse_body(json.dumps({"version": 1, "pipeline_name": "p", "job_id": "j-1"}))
    assert isinstance(parsed, JobMessage)
    assert parsed.job_id == "j-1"


def test_sns_wrapped_message_is_unwrapped() -> None:
    inner = json.dumps({"version": 1, "pipeline_name": "p"})
    parsed = parse_body(json.dumps({"Type": "Notification", "Message": inner}))
    assert isinstance(parsed, JobMessage)


@pytest.mark.parametrize(
    ("body", "names_job", "reason"),
    [
        ("not json", False, "not JSON"),
        ("[1, 2]", False, "not an object"),
        ('"a string"', False, "not an object"),
        ("{}", False, "version"),
        (json.dumps({"version": 1}), False, "pipeline_name"),
        (json.dumps({"version": 9, "pipeline_name": "p"}), False, "version"),
        (
            json.dumps({"version": 1, "pipeline_name": "p", "job_id": "j-9", "parameters": 3}),
            True,
            "parameters",
        ),
        (json.dumps({"version": 1, "pipeline_name": 5, "job_id": "j-9"}), True, "pipeline_name"),
        ("x" * 300_000, False, "over"),
    ],
)
def test_bad_messages_say_why(body: str, names_job: bool, reason: str) -> None:
    parsed = parse_body(body)
    assert isinstance(parsed, BadMessage)
    assert reason in parsed.reason
    assert (parsed.job_id == "j-9") is names_job
