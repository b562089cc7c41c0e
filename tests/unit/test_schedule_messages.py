"""A schedule's fire as a queue message: its job id (one job per fire, however often it is
delivered), what the job record and its events carry, and what a message must hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from kedro_jobs.core.events import entry
from kedro_jobs.core.messages import RefusedMessage, check_may_create
from kedro_jobs.core.models import Job
from kedro_jobs.core.requests import JobMessage, JobRequest
from kedro_jobs.core.schedules import fire_input, read_input
from kedro_jobs.core.store.items import from_item, to_item

FIRE = "2026-12-08T01:00:00Z"
KEY = "the-deployments-signing-key"


def fire(user: str = "alice", name: str = "nightly", when: str = FIRE) -> JobMessage:
    body = fire_input(user, name, JobRequest(pipeline_name="p"), "skip", key=KEY)
    return JobMessage.model_validate_json(body.replace("<aws.scheduler.scheduled-time>", when))


def test_the_template_leaves_the_time_to_scheduler() -> None:
    body = json.loads(
        fire_input("alice", "nightly", JobRequest(pipeline_name="p"), "queue", key=KEY)
    )
    assert body["scheduled_for"] == "<aws.scheduler.scheduled-time>"
    assert body["schedule"] == "nightly" and body["overlap"] == "queue"
    assert body["user_id"] == "alice" and "job_id" not in body
    assert read_input("nightly", json.dumps(body)).pipeline_name == "p"


def test_a_fire_names_one_job_whatever_its_delivery() -> None:
    first, retried = fire(), fire()
    assert first.derived_job_id("message-1") == retried.derived_job_id("message-2")
    # Another fire, schedule or owner is another job.
    ids = {
        first.derived_job_id("m"),
        fire(when="2026-12-09T01:00:00Z").derived_job_id("m"),
        fire(name="other").derived_job_id("m"),
        fire(user="bob").derived_job_id("m"),
    }
    assert len(ids) == 4
    # The same instant written another way is the same fire.
    assert fire(when="2026-12-08T02:00:00+01:00").derived_job_id("m") == first.derived_job_id("m")


def test_a_fires_job_carries_the_schedule_in_the_record_the_store_and_its_events() -> None:
    message = fire()
    job = Job.from_message(message.derived_job_id("m"), message, compute="lambda")
    assert job.schedule == "nightly" and job.source == "schedule" and job.overlap == "skip"
    assert job.scheduled_for == datetime(2026, 12, 8, 1, tzinfo=UTC)
    item = to_item(job)
    assert item["user_schedule"] == {"S": "alice#nightly"}  # the by-schedule index's key
    assert from_item(item) == job
    detail = json.loads(entry(job, "state", "bus")["Detail"])
    assert detail["schedule"] == "nightly" and detail["scheduled_for"] == FIRE
    # The sweeper's re-sent message is still the fire's.
    resent = job.to_message()
    assert resent.schedule == "nightly" and resent.overlap == "skip"
    assert resent.derived_job_id("x") == job.id


def test_a_job_not_of_a_schedule_is_not_in_the_schedule_index() -> None:
    job = Job.new(pipeline_name="p", parameters={}, options={}, user_id="alice")
    assert "user_schedule" not in to_item(job)
    assert "schedule" not in job.to_message().model_dump(exclude_none=True)


@pytest.mark.parametrize(
    "change",
    [
        {"scheduled_for": None},  # a schedule without its fire time
        {"schedule": None},  # a fire time without its schedule
        {"scheduled_for": "<aws.scheduler.scheduled-time>"},  # the template, not filled in
        {"overlap": "sometimes"},
        {"schedule": "a/b"},
    ],
)
def test_a_fire_message_must_be_whole(change: dict[str, object]) -> None:
    body = {**fire().model_dump(mode="json", exclude_none=True), **change}
    body = {k: v for k, v in body.items() if v is not None}
    with pytest.raises(ValidationError):
        JobMessage.model_validate(body)


def test_a_schedule_owned_by_a_reserved_name_fires_only_with_the_apis_seal() -> None:
    # Anonymous callers and machine clients own schedules too; a plain queue message may not
    # make a job in their name, so the API seals the owner into the schedule's message.
    for owner in ("anonymous", "client:nightly-etl"):
        sealed = fire(owner)
        assert sealed.owner_seal is not None
        check_may_create(sealed, KEY)  # the consumer, with the same key: allowed
        with pytest.raises(RefusedMessage, match="reserved name"):
            check_may_create(sealed, "another-deployments-key")
        forged = sealed.model_copy(update={"schedule": "other"})
        with pytest.raises(RefusedMessage, match="reserved name"):
            check_may_create(forged, KEY)
        unsealed = sealed.model_copy(update={"owner_seal": None})
        with pytest.raises(RefusedMessage, match="reserved name"):
            check_may_create(unsealed, KEY)
    # An ordinary owner needs no seal; a plain message naming a reserved owner is refused.
    assert fire("alice").owner_seal is None
    plain = JobMessage(version=1, pipeline_name="p", user_id="client:x")
    with pytest.raises(RefusedMessage, match="reserved name"):
        check_may_create(plain, KEY)
