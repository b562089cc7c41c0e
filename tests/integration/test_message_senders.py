"""Every message accounted for, and a message changes only a job its sender could have made:
through the consumer's Lambda handler with real SQS events and a real moto server, and the
dead-letter function on what the consumer put on the DLQ."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from kedro_jobs.core.models import Job
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ApiJobs, ClaimOutcome, RunJobs
from kedro_jobs.dead_letters.handler import dead_letter
from kedro_jobs_local.lambda_events import to_lambda_record

from .conftest import Aws, Invoke


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def _dead(aws: Aws) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while batch := aws.sqs.receive_message(
        QueueUrl=aws.resources.dlq_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=0,
        MessageAttributeNames=["All"],
        AttributeNames=["All"],
    ).get("Messages", []):
        found.extend(batch)
    return found


def _reason(message: dict[str, Any]) -> str:
    return str(message["MessageAttributes"]["reason"]["StringValue"])


def _running(store: ApiJobs, user: str) -> Job:
    run_jobs = RunJobs.over(store)
    job = store.create(Job.new(pipeline_name="two_nodes", parameters={}, options={}, user_id=user))
    claim = run_jobs.claim(job.id, lease_seconds=600, max_attempts=3, user_id=user)
    assert claim.outcome is ClaimOutcome.CLAIMED and claim.job is not None
    return claim.job


UNREADABLE: dict[str, dict[str, Any]] = {
    "unknown field": {"pipeline_name": "two_nodes", "surprise": 1},
    "70 KB parameters": {"pipeline_name": "two_nodes", "parameters": {"p": "x" * 70_000}},
    "nesting 300 deep": {"pipeline_name": "two_nodes", "parameters": nested(300)},
}


@pytest.mark.parametrize("fields", UNREADABLE.values(), ids=list(UNREADABLE))
def test_an_unreadable_message_naming_no_existing_job_goes_to_the_dlq_at_once(
    invoke: Invoke, aws: Aws, fields: dict[str, Any]
) -> None:
    body = json.dumps({"version": 1, "job_id": "nobody-made-this", **fields})
    # One delivery: acknowledged (not a batch item failure), so it never waits out the
    # visibility timeout on the main queue.
    assert invoke(body) == {"batchItemFailures": []}
    [dead] = _dead(aws)
    assert dead["Body"] == body
    assert "names job 'nobody-made-this', which does not exist" in _reason(dead)
    assert aws.items() == []  # no record was made, and none is left pending


def test_an_unreadable_message_leaves_someone_elses_running_job_alone(
    invoke: Invoke, aws: Aws, store: ApiJobs
) -> None:
    job = _running(store, "alice")
    mallory = {"version": 1, "job_id": job.id, "pipeline_name": 5, "user_id": "mallory"}
    alice = {"version": 1, "job_id": job.id, "pipeline_name": 5, "user_id": "alice"}
    assert invoke(json.dumps(mallory), json.dumps(alice)) == {"batchItemFailures": []}
    after = store.get(job.id)
    assert after is not None and after.status is JobStatus.RUNNING
    assert after.attempts == job.attempts
    dead = _dead(aws)
    reasons = sorted(_reason(m) for m in dead)
    assert len(reasons) == 2
    assert "another user's and left alone" in reasons[0]
    assert "running and left alone" in reasons[1]
    # The dead-letter function does not fail it either: the consumer already decided.
    region = aws.sqs.meta.region_name
    for message in dead:
        dead_letter(SQSRecord(to_lambda_record(message, "arn:dlq", region)), store)
    assert store.get(job.id).status is JobStatus.RUNNING  # type: ignore[union-attr]


def test_an_unreadable_message_fails_only_its_senders_own_pending_job(
    invoke: Invoke, aws: Aws, store: ApiJobs
) -> None:
    theirs = store.create(
        Job.new(pipeline_name="two_nodes", parameters={}, options={}, user_id="alice")
    )
    body = json.dumps({"version": 1, "job_id": theirs.id, "pipeline_name": 5})  # "anonymous"
    invoke(body)
    assert store.get(theirs.id).status is JobStatus.PENDING  # type: ignore[union-attr]
    assert "another user's" in _reason(_dead(aws)[0])
    own = {"version": 1, "job_id": theirs.id, "pipeline_name": 5, "user_id": "alice"}
    invoke(json.dumps(own))
    failed = store.get(theirs.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert "could not be read" in (failed.error_message or "")


def test_a_well_formed_message_naming_someone_elses_job_changes_nothing(
    invoke: Invoke, aws: Aws, store: ApiJobs
) -> None:
    running = _running(store, "alice")
    pending = store.create(
        Job.new(pipeline_name="two_nodes", parameters={}, options={}, user_id="alice")
    )
    bodies = [
        json.dumps({"version": 1, "job_id": job.id, "pipeline_name": "two_nodes"})
        for job in (running, pending)
    ]
    assert invoke(*bodies) == {"batchItemFailures": []}
    assert store.get(running.id).attempts == running.attempts  # type: ignore[union-attr]
    assert store.get(pending.id).status is JobStatus.PENDING  # type: ignore[union-attr]


@pytest.mark.parametrize("user", ["anonymous", "client:billing"])
def test_a_message_may_not_make_a_job_for_a_reserved_name(
    invoke: Invoke, aws: Aws, user: str
) -> None:
    body = json.dumps({"version": 1, "pipeline_name": "two_nodes", "user_id": user})
    assert invoke(body) == {"batchItemFailures": []}
    [dead] = _dead(aws)
    assert f"user_id {user!r} is a reserved name" in _reason(dead)
    assert aws.items() == []
    # Naming its own id changes nothing either.
    named = json.dumps(
        {"version": 1, "job_id": "j-1", "pipeline_name": "two_nodes", "user_id": user}
    )
    invoke(named)
    assert aws.items() == []
    assert "reserved name" in _reason(_dead(aws)[0])
