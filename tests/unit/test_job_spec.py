"""What a client sets for a job (core/requests.py ``JobSpec``) is one model: the request,
the record, the queue message, a retry's request and a schedule's job carry every field of it
unchanged, and the message keeps its shape on the wire."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from kedro_jobs.core.jobs import request_of
from kedro_jobs.core.messages import parse_body
from kedro_jobs.core.models import Job
from kedro_jobs.core.queue import encode
from kedro_jobs.core.requests import SPEC_FIELDS, JobMessage, JobRequest
from kedro_jobs.core.schedules import Schedule, fire_input, read_input
from kedro_jobs.core.store.items import from_item, to_item

# Every client-set field away from its default, so a copy that drops one shows.
ASKED = JobRequest.model_validate(
    {
        "pipeline_name": "data_loading",
        "parameters": {"data_loading": {"n_rows": 500}},
        "tags": ["t"],
        "env": "base",
        "fan_out": False,
        "compute": "fargate",
        "max_job_seconds": 3600,
    }
)


def test_every_copy_of_a_request_carries_all_it_asked() -> None:
    bare = JobRequest(pipeline_name="other").spec()  # a new field must be set in ASKED too
    assert [name for name in SPEC_FIELDS if ASKED.spec()[name] == bare.get(name)] == []
    job = Job.new(ASKED, user_id="alice")
    assert job.spec() == ASKED.spec()
    assert from_item(to_item(job)).spec() == ASKED.spec()  # the table
    message = parse_body(encode(job.to_message()))  # the queue
    assert isinstance(message, JobMessage) and message.spec() == ASKED.spec()
    assert Job.from_message(job.id, message).spec() == ASKED.spec()  # the consumer's record
    assert request_of(job) == ASKED  # a retry
    fire = read_input("nightly", fire_input("alice", "nightly", ASKED, "skip", key="k"))
    assert fire.spec() == ASKED.spec()  # a schedule's fires
    assert JobRequest.model_validate(fire.spec()) == ASKED  # the schedule as shown


def test_the_request_is_the_spec_and_nothing_else() -> None:
    """A field on the request that is not the spec's would be dropped by every copy."""
    assert set(JobRequest.model_fields) == SPEC_FIELDS
    assert Schedule.model_fields["job"].annotation is JobRequest


def test_a_lambda_jobs_message_does_not_say_compute() -> None:
    lambda_job = Job.new(JobRequest(pipeline_name="p"), user_id="u", job_id="j1")
    body = json.loads(encode(lambda_job.to_message()))
    assert body == {
        "version": 1,
        "job_id": "j1",
        "pipeline_name": "p",
        "parameters": {},
        "options": {},
        "user_id": "u",
    }
    fargate = Job.new(ASKED, user_id="u", job_id="j2")
    assert json.loads(encode(fargate.to_message()))["compute"] == "fargate"


def test_a_message_from_another_system_may_say_null_or_nothing_for_compute() -> None:
    for body in (
        {"version": 1, "pipeline_name": "p", "compute": None},
        {"version": 1, "pipeline_name": "p"},
    ):
        message = parse_body(json.dumps(body))
        assert isinstance(message, JobMessage) and message.compute == "lambda"
        assert Job.from_message("j", message).compute == "lambda"


def test_a_record_reads_what_was_accepted_before_a_limit() -> None:
    """The record keeps the spec's plain types: an item stored before a limit (or a damaged
    item's placeholder name) still reads; the request refuses it."""
    old = Job.new(user_id="u", pipeline_name="(unreadable)", max_job_seconds=30)
    assert from_item(to_item(old)).max_job_seconds == 30
    with pytest.raises(ValidationError, match="max_job_seconds"):
        JobRequest.model_validate(old.spec())
