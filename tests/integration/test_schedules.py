"""Schedules end to end below HTTP: the API's Lambda handler keeps them in (moto's)
EventBridge Scheduler; a fire's message, as Scheduler sends it, reaches the consumer's
handler and makes one job however often it is delivered; the overlap policies; the local
firer against moto's Scheduler with an injected clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from kedro_jobs.core.artifacts import ArtifactStore
from kedro_jobs.core.manifest import Manifest, ManifestReader, PipelineInfo
from kedro_jobs.core.models import Job
from kedro_jobs.core.settings import get_settings
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ApiJobs, RunJobs
from kedro_jobs_local.scheduler import Firer, fire_body

from .conftest import ApiCall, Aws, Invoke

API = "/api/v1/schedules"
NIGHTLY = {
    "name": "nightly",
    "expression": "cron(0 2 * * ? *)",
    "timezone": "Europe/Paris",
    "job": {"pipeline_name": "two_nodes", "parameters": {"x": 21}},
}


def scheduler_client(aws: Aws) -> Any:
    return boto3.client("scheduler", endpoint_url=aws.dynamodb.meta.endpoint_url)


def stored(aws: Aws) -> list[dict[str, Any]]:
    client = scheduler_client(aws)
    group = get_settings().schedule_group_name
    names = [s["Name"] for s in client.list_schedules(GroupName=group)["Schedules"]]
    return [client.get_schedule(Name=name, GroupName=group) for name in names]


def fire(aws: Aws, when: str) -> str:
    """The message Scheduler sends for the only schedule's fire at ``when``."""
    (schedule,) = stored(aws)
    return fire_body(schedule["Target"]["Input"], datetime.fromisoformat(when))


def test_a_schedule_is_created_shown_and_kept_in_scheduler(api_call: ApiCall, aws: Aws) -> None:
    status, body, headers = api_call("POST", API, body=NIGHTLY)
    assert status == 201, body
    assert headers["location"] == f"{API}/nightly"
    assert body["state"] == "enabled" and body["overlap"] == "allow"
    assert body["job"]["pipeline_name"] == "two_nodes"
    # 02:00 in Paris is 01:00 UTC in winter.
    assert len(body["next_fires"]) == 5
    assert all(fire.endswith("T01:00:00Z") for fire in body["next_fires"])
    assert body["last_run"] is None
    (schedule,) = stored(aws)
    assert schedule["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert schedule["Target"]["Arn"] == get_settings().jobs_queue_arn
    message = json.loads(schedule["Target"]["Input"])
    assert message["scheduled_for"] == "<aws.scheduler.scheduled-time>"
    assert message["schedule"] == "nightly" and message["user_id"] == "anonymous"
    assert "job_id" not in message  # each fire's job id comes from its scheduled time

    status, page, _ = api_call("GET", API)
    assert status == 200 and [s["name"] for s in page["schedules"]] == ["nightly"]
    status, again, _ = api_call("GET", f"{API}/nightly")
    assert status == 200 and again["expression"] == "cron(0 2 * * ? *)"
    status, body, _ = api_call("POST", API, body=NIGHTLY)
    assert status == 409 and "already exists" in body["detail"]


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"expression": "cron(0 2 * * *)"}, "6 fields"),
        ({"expression": "cron(0 2 * * * *)"}, "'?'"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"expression": "at(2020-01-01T00:00:00)"}, "in the past"),
        ({"job": {"pipeline_name": "two words"}}, "pattern"),
        ({"job": {"pipeline_name": "p", "tagz": ["a"]}}, "Extra inputs"),
        ({"job": {"pipeline_name": "p", "compute": "fargate"}}, "not offered"),
        ({"overlap": "sometimes"}, "allow"),
        ({"name": "a/b"}, "pattern"),
    ],
)
def test_bad_schedules_are_422_naming_what_is_wrong_and_make_nothing(
    api_call: ApiCall, aws: Aws, change: dict[str, Any], names: str
) -> None:
    status, body, _ = api_call("POST", API, body={**NIGHTLY, **change})
    assert status == 422, body
    assert names in json.dumps(body)
    assert stored(aws) == []


def test_an_unknown_pipeline_is_refused_against_the_manifest(api_call: ApiCall, aws: Aws) -> None:
    artifacts = ArtifactStore(aws.resources.bucket, s3=aws.s3)
    ManifestReader(artifacts).publish(
        Manifest(pipelines={"two_nodes": PipelineInfo(name="two_nodes")})
    )
    status, body, _ = api_call("POST", API, body={**NIGHTLY, "job": {"pipeline_name": "nope"}})
    assert status == 422 and "Unknown pipeline 'nope'" in body["detail"]
    assert stored(aws) == []


def test_pause_resume_patch_and_delete(api_call: ApiCall, aws: Aws) -> None:
    api_call("POST", API, body={**NIGHTLY, "expression": "rate(1 minute)", "timezone": "UTC"})
    status, paused, _ = api_call("POST", f"{API}/nightly/pause")
    assert status == 200 and paused["state"] == "paused" and paused["next_fires"] == []
    assert stored(aws)[0]["State"] == "DISABLED"
    status, resumed, _ = api_call("POST", f"{API}/nightly/resume")
    assert resumed["state"] == "enabled" and len(resumed["next_fires"]) == 5
    status, patched, _ = api_call(
        "PATCH", f"{API}/nightly", body={"expression": "rate(2 hours)", "overlap": "skip"}
    )
    assert status == 200, patched
    assert patched["expression"] == "rate(2 hours)" and patched["overlap"] == "skip"
    assert patched["job"]["parameters"] == {"x": 21}  # what was not given is kept
    status, _body, _ = api_call("PATCH", f"{API}/nightly", body={"expression": "often"})
    assert status == 422 and stored(aws)[0]["ScheduleExpression"] == "rate(2 hours)"
    status, _, _ = api_call("DELETE", f"{API}/nightly")
    assert status == 204 and stored(aws) == []
    assert api_call("GET", f"{API}/nightly")[0] == 404
    assert api_call("POST", f"{API}/nightly/run")[0] == 404


def test_a_schedule_is_its_owners_only(api_call: ApiCall, aws: Aws) -> None:
    assert api_call("POST", API, user="alice", body=NIGHTLY)[0] == 201
    assert api_call("GET", f"{API}/nightly", user="bob")[0] == 404
    assert api_call("POST", f"{API}/nightly/pause", user="bob")[0] == 404
    assert api_call("DELETE", f"{API}/nightly", user="bob")[0] == 404
    assert api_call("GET", API, user="bob")[1]["schedules"] == []
    # Bob may have a schedule of the same name: his own.
    assert api_call("POST", API, user="bob", body=NIGHTLY)[0] == 201
    assert len(stored(aws)) == 2


def test_a_fire_delivered_twice_makes_one_job_with_the_schedules_fields(
    api_call: ApiCall, aws: Aws, invoke: Invoke, store: ApiJobs
) -> None:
    api_call("POST", API, body=NIGHTLY)
    body = fire(aws, "2026-12-08T01:00:00+00:00")
    # Scheduler retried the fire: two messages, two message ids, the same scheduled time.
    assert invoke(body, message_ids=["m-1"]) == {"batchItemFailures": []}
    assert invoke(body, message_ids=["m-2"]) == {"batchItemFailures": []}
    page = store.list_jobs("anonymous", schedule="nightly")
    assert len(page.jobs) == 1
    job = page.jobs[0]
    assert job.status is JobStatus.COMPLETED and job.results == {"doubled": 42}
    assert job.schedule == "nightly" and job.source == "schedule"
    assert job.scheduled_for == datetime(2026, 12, 8, 1, tzinfo=UTC)
    assert len(aws.items()) == 1

    status, listed, _ = api_call("GET", "/api/v1/jobs", query={"schedule": "nightly"})
    assert status == 200 and [j["id"] for j in listed["jobs"]] == [job.id]
    assert listed["jobs"][0]["scheduled_for"] == "2026-12-08T01:00:00Z"
    assert api_call("GET", "/api/v1/jobs", query={"schedule": "other"})[1]["jobs"] == []
    # With the other filters: on the index's own attributes, still one Query.
    by = {"schedule": "nightly", "status": "completed", "pipeline_name": "two_nodes"}
    assert [j["id"] for j in api_call("GET", "/api/v1/jobs", query=by)[1]["jobs"]] == [job.id]
    for other in ({"status": "failed"}, {"pipeline_name": "p"}):
        assert api_call("GET", "/api/v1/jobs", query={**by, **other})[1]["jobs"] == []
    status, schedule, _ = api_call("GET", f"{API}/nightly")
    assert schedule["last_run"]["id"] == job.id
    assert schedule["last_run"]["status"] == "completed"


def test_run_now_makes_a_job_of_the_schedule(
    api_call: ApiCall, aws: Aws, invoke: Invoke, store: ApiJobs
) -> None:
    api_call("POST", API, body=NIGHTLY)
    status, job, headers = api_call("POST", f"{API}/nightly/run")
    assert status == 202, job
    assert job["schedule"] == "nightly" and job["status"] == "pending"
    assert headers["location"] == f"/api/v1/jobs/{job['id']}"
    (message,) = aws.messages()
    assert invoke(message["Body"]) == {"batchItemFailures": []}
    done = store.get(job["id"])
    assert done is not None and done.status is JobStatus.COMPLETED


def running_run(store: ApiJobs, schedule: str) -> Job:
    """A run of ``schedule`` that is running now (claimed by a consumer elsewhere)."""
    run_jobs = RunJobs.over(store)
    job = Job.new(
        pipeline_name="two_nodes",
        parameters={},
        options={},
        user_id="anonymous",
        schedule=schedule,
        scheduled_for=datetime(2026, 12, 8, 0, tzinfo=UTC),
        source="schedule",
    )
    store.create(job)
    claim = run_jobs.claim(job.id, lease_seconds=600, max_attempts=3)
    assert claim.job is not None and claim.job.status is JobStatus.RUNNING
    return claim.job


def test_overlap_skip_records_the_fire_as_skipped_and_runs_nothing(
    api_call: ApiCall, aws: Aws, invoke: Invoke, store: ApiJobs, record: Path
) -> None:
    api_call("POST", API, body={**NIGHTLY, "overlap": "skip"})
    earlier = running_run(store, "nightly")
    assert invoke(fire(aws, "2026-12-08T01:00:00+00:00")) == {"batchItemFailures": []}
    runs = store.list_jobs("anonymous", schedule="nightly").jobs
    skipped = next(job for job in runs if job.id != earlier.id)
    assert skipped.status is JobStatus.CANCELLED
    assert skipped.error_message and "Skipped" in skipped.error_message
    assert earlier.id in skipped.error_message
    assert not record.exists() or record.read_text() == ""


def test_overlap_queue_waits_for_the_earlier_run_then_runs(
    api_call: ApiCall, aws: Aws, invoke: Invoke, store: ApiJobs
) -> None:
    api_call("POST", API, body={**NIGHTLY, "overlap": "queue"})
    earlier = running_run(store, "nightly")
    body = fire(aws, "2026-12-08T01:00:00+00:00")
    assert invoke(body) == {"batchItemFailures": []}
    waiting = [job for job in store.list_jobs("anonymous", schedule="nightly").jobs]
    queued = next(job for job in waiting if job.id != earlier.id)
    assert queued.status is JobStatus.PENDING
    # Its message comes back later (a new, delayed message).
    attrs = aws.sqs.get_queue_attributes(
        QueueUrl=aws.resources.queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessagesDelayed"] == "1"
    # The earlier run ends; the next delivery of the fire runs it.
    store.fail(earlier.id, "ended")
    assert invoke(body) == {"batchItemFailures": []}
    done = store.get(queued.id)
    assert done is not None and done.status is JobStatus.COMPLETED


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_the_local_firer_sends_what_scheduler_would_and_honours_pause(
    api_call: ApiCall, aws: Aws, tmp_path: Path
) -> None:
    clock = Clock(datetime.now(UTC))
    client = scheduler_client(aws)

    def firer() -> Firer:
        return Firer(
            group=get_settings().schedule_group_name,
            scheduler=client,
            sqs=aws.sqs,
            state_file=tmp_path / "fired.json",
            clock=clock,
        )

    local = firer()
    clock.now += timedelta(seconds=1)
    api_call("POST", API, body={**NIGHTLY, "expression": "rate(1 minute)", "timezone": "UTC"})
    clock.now += timedelta(seconds=5)
    assert len(local.tick()) == 1  # a new rate() schedule fires when it is created
    clock.now += timedelta(minutes=3)
    assert len(local.tick()) == 3  # then each minute
    messages = aws.messages()
    assert len(messages) == 4
    body = json.loads(messages[0]["Body"])
    assert body["schedule"] == "nightly" and body["scheduled_for"].endswith("Z")

    api_call("POST", f"{API}/nightly/pause")
    clock.now += timedelta(minutes=5)
    assert local.tick() == []
    api_call("POST", f"{API}/nightly/resume")
    clock.now += timedelta(minutes=2)
    assert len(local.tick()) == 2  # the paused minutes are not made up
    api_call("DELETE", f"{API}/nightly")
    clock.now += timedelta(minutes=2)
    assert local.tick() == []


def test_the_local_firer_fires_a_missed_at_schedule_once_after_a_restart(
    api_call: ApiCall, aws: Aws, tmp_path: Path
) -> None:
    soon = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:00")
    api_call("POST", API, body={**NIGHTLY, "expression": f"at({soon})", "timezone": "UTC"})
    client = scheduler_client(aws)
    clock = Clock(datetime.now(UTC) + timedelta(hours=1))  # the stack was down meanwhile

    def firer() -> Firer:
        return Firer(
            group=get_settings().schedule_group_name,
            scheduler=client,
            sqs=aws.sqs,
            state_file=tmp_path / "fired.json",
            clock=clock,
        )

    assert [fire for _, fire in firer().tick()] == [datetime.fromisoformat(soon + "+00:00")]
    assert firer().tick() == []  # restarted again: not a second time


@pytest.mark.parametrize(
    ("expression", "target_input"),
    [
        ("rate(1 day)", '{"not": "a job message"}'),
        ("cron(0 2 * * *)", None),  # an expression the API would have refused
    ],
)
def test_a_schedule_edited_outside_the_api_is_a_409_never_a_500(
    api_call: ApiCall, aws: Aws, expression: str, target_input: str | None
) -> None:
    api_call("POST", API, body=NIGHTLY)
    (schedule,) = stored(aws)
    target = dict(schedule["Target"])
    if target_input is not None:
        target["Input"] = target_input
    scheduler_client(aws).update_schedule(
        Name=schedule["Name"],
        GroupName=schedule["GroupName"],
        ScheduleExpression=expression,
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
    )
    status, body, _ = api_call("GET", f"{API}/nightly")
    assert status == 409 and "cannot be read" in body["detail"]
    assert api_call("GET", API)[1]["schedules"] == []
    assert api_call("DELETE", f"{API}/nightly")[0] == 204  # it can still be deleted


def test_a_schedule_made_while_make_dev_starts_fires_when_the_firer_is_up(
    api_call: ApiCall, aws: Aws
) -> None:
    # The API is up before the firer: a rate() schedule made in between fires at once all
    # the same, as on EventBridge.
    api_call("POST", API, body={**NIGHTLY, "expression": "rate(1 hour)", "timezone": "UTC"})
    clock = Clock(datetime.now(UTC) + timedelta(seconds=20))
    firer = Firer(
        group=get_settings().schedule_group_name,
        scheduler=scheduler_client(aws),
        sqs=aws.sqs,
        clock=clock,
    )
    assert len(firer.tick()) == 1
    clock.now += timedelta(minutes=30)
    assert firer.tick() == []
