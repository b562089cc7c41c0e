"""The contracts: what a submit request and a queue message accept and reject."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kedro_jobs.core.errors import InvalidCursor
from kedro_jobs.core.models import Job
from kedro_jobs.core.requests import JobMessage, JobRequest, RunOptions
from kedro_jobs.core.store import decode_cursor, encode_cursor


def test_minimal_request_is_the_old_services_body() -> None:
    request = JobRequest.model_validate({"pipeline_name": "data_loading", "parameters": {}})
    assert request.pipeline_name == "data_loading"
    assert request.options.given() == {}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"pipeline_name": 1},
        {"pipeline_name": None},
        {"pipeline_name": ""},
        {"pipeline_name": "has space"},
        {"pipeline_name": "x" * 129},
        {"pipeline_name": "a/b"},
        {"pipeline_name": "ok", "parameters": []},
        {"pipeline_name": "ok", "parameters": "x"},
        {"pipeline_name": "ok", "unknown": 1},
        {"pipeline_name": "ok", "options": {"tagz": ["a"]}},
        {"pipeline_name": "ok", "tags": "not-a-list"},
        {"pipeline_name": "ok", "env": "../etc"},
        {"pipeline_name": "ok", "tags": ["a"], "options": {"tags": ["b"]}},
        {"pipeline_name": "ok", "parameters": {"big": "x" * 70_000}},
    ],
)
def test_bad_requests_are_rejected(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        JobRequest.model_validate(body)


def test_run_options_at_top_level_or_nested() -> None:
    top = JobRequest.model_validate({"pipeline_name": "p", "tags": ["a"], "env": "base"})
    nested = JobRequest.model_validate(
        {"pipeline_name": "p", "options": {"tags": ["a"], "env": "base"}}
    )
    assert top.options == nested.options == RunOptions(tags=["a"], env="base")
    assert top.options.given() == {"tags": ["a"], "env": "base"}


def test_message_without_job_id_gets_a_stable_derived_id() -> None:
    message = JobMessage.model_validate({"version": 1, "pipeline_name": "p"})
    first = message.derived_job_id("message-1")
    assert first == message.derived_job_id("message-1")
    assert first != message.derived_job_id("message-2")


def test_idempotency_key_beats_message_id() -> None:
    message = JobMessage.model_validate(
        {"version": 1, "pipeline_name": "p", "idempotency_key": "order-42"}
    )
    assert message.derived_job_id("m1") == message.derived_job_id("m2")


def test_message_version_must_be_known() -> None:
    with pytest.raises(ValidationError):
        JobMessage.model_validate({"version": 2, "pipeline_name": "p"})


def test_api_message_round_trip() -> None:
    job = Job.new(pipeline_name="p", parameters={"x": 1.5}, options={"tags": ["t"]}, user_id="u")
    message = JobMessage.model_validate_json(job.to_message().model_dump_json())
    assert message.job_id == job.id
    assert message.parameters == {"x": 1.5}
    assert message.options.tags == ["t"]


def test_record_keeps_the_old_field_names() -> None:
    job = Job.new(pipeline_name="data_loading", parameters={}, options={}, user_id="anonymous")
    dumped = job.model_dump(mode="json")
    for name in (
        "id",
        "pipeline_name",
        "user_id",
        "status",
        "parameters",
        "results",
        "error_message",
        "created_at",
        "started_at",
        "completed_at",
        "execution_time",
    ):
        assert name in dumped
    assert dumped["status"] == "pending"
    assert dumped["created_at"].endswith("Z")


def test_cursor_round_trip_and_tampering() -> None:
    key = {"id": {"S": "j1"}, "created_at": {"S": "2026"}, "user_id": {"S": "alice"}}
    cursor = encode_cursor(key)
    assert decode_cursor(cursor, hash_attr="user_id", hash_value="alice") == key
    with pytest.raises(InvalidCursor):  # another user's partition
        decode_cursor(cursor, hash_attr="user_id", hash_value="bob")
    for bad in ("", "!!!", "bm90IGpzb24", encode_cursor({"id": {"S": "j1"}})):
        with pytest.raises(InvalidCursor):
            decode_cursor(bad, hash_attr="user_id", hash_value="alice")
