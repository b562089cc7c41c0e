"""Schedules through `make dev`: the stack's own firer (moto keeps schedules but never fires
them) fires a rate() schedule from moto's Scheduler; pause, resume, run now and delete; a
fire delivered twice makes one job. The CLI drives it as a user would. That schedules
outlive a restart of `make dev` is checked with the rest of its history (test_supervision.py),
on the same restarts."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from kedro_jobs_local.dev_stack import LocalStack

from .conftest import until, wait_for
from .test_cli import kedro_jobs, submitted_id


def runs(client: httpx.Client, name: str) -> list[dict[str, Any]]:
    page: dict[str, Any] = client.get("/api/v1/jobs", params={"schedule": name}).json()
    return list(page["jobs"])


def test_a_rate_schedule_fires_pauses_resumes_runs_and_ends(local_stack: LocalStack) -> None:
    name = f"every-minute-{uuid.uuid4().hex[:8]}"
    created = kedro_jobs(
        local_stack,
        "schedule", "create", name, "hello",
        "--expression", "rate(1 minute)", "--overlap", "skip", "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    schedule = json.loads(created.stdout)
    assert schedule["state"] == "enabled" and len(schedule["next_fires"]) == 5

    with local_stack.client() as client:
        # A new rate() schedule fires when it is made (as on EventBridge), then each minute.
        first = until("the schedule's first fire", lambda: runs(client, name), timeout=60)
        assert len(first) == 1
        done = wait_for(client, first[0]["id"])
        assert done["status"] == "completed", done
        assert done["schedule"] == name and done["scheduled_for"] and done["source"] == "schedule"

        shown = kedro_jobs(local_stack, "schedule", "show", name)
        assert (
            shown.returncode == 0
            and "completed" in shown.stdout
            and "rate(1 minute)" in shown.stdout
        )

        paused = kedro_jobs(local_stack, "schedule", "pause", name, "--json")
        assert json.loads(paused.stdout)["state"] == "paused"
        assert json.loads(paused.stdout)["next_fires"] == []
        resumed = kedro_jobs(local_stack, "schedule", "resume", name, "--json")
        assert json.loads(resumed.stdout)["state"] == "enabled"

        # Run now: a job of the schedule, followed to its end.
        ran = kedro_jobs(local_stack, "schedule", "run", name, "--watch")
        assert ran.returncode == 0, ran.stdout + ran.stderr
        job_id = submitted_id(ran.stdout)
        assert client.get(f"/api/v1/jobs/{job_id}").json()["schedule"] == name

        listed = kedro_jobs(local_stack, "schedule", "list")
        assert name in listed.stdout

        deleted = kedro_jobs(local_stack, "schedule", "delete", name)
        assert deleted.returncode == 0
        assert client.get(f"/api/v1/schedules/{name}").status_code == 404
        assert kedro_jobs(local_stack, "schedule", "show", name).returncode == 3
        # The jobs it made stay.
        assert {job_id, first[0]["id"]} <= {job["id"] for job in runs(client, name)}


def test_a_fire_delivered_twice_makes_one_job(local_stack: LocalStack) -> None:
    name = f"nightly-{uuid.uuid4().hex[:8]}"
    with local_stack.client() as client:
        created = client.post(
            "/api/v1/schedules",
            json={
                "name": name,
                "expression": "cron(0 2 * * ? *)",
                "timezone": "Europe/Paris",
                "job": {"pipeline_name": "hello"},
            },
        )
        assert created.status_code == 201, created.text
        # The message Scheduler sends for the 02:00 fire, delivered twice (a retry).
        scheduler = local_stack.aws("scheduler")
        group = next(
            g["Name"] for g in scheduler.list_schedule_groups()["ScheduleGroups"]
            if g["Name"] != "default"
        )  # fmt: skip
        (summary,) = [
            s for s in scheduler.list_schedules(GroupName=group)["Schedules"]
            if s["Name"].endswith("." + name)
        ]  # fmt: skip
        spec = scheduler.get_schedule(Name=summary["Name"], GroupName=group)
        body = spec["Target"]["Input"].replace(
            "<aws.scheduler.scheduled-time>", "2026-12-08T01:00:00Z"
        )
        sqs = local_stack.aws("sqs")
        queue = sqs.get_queue_url(QueueName=spec["Target"]["Arn"].rsplit(":", 1)[-1])["QueueUrl"]
        sqs.send_message(QueueUrl=queue, MessageBody=body)
        sqs.send_message(QueueUrl=queue, MessageBody=body)
        (job,) = until("the fire's job", lambda: runs(client, name), timeout=60)
        assert wait_for(client, job["id"])["status"] == "completed"
        assert job["scheduled_for"] == "2026-12-08T01:00:00Z"
        # Both deliveries have been taken, and still one job.
        until(
            "both deliveries taken",
            lambda: (
                sqs.get_queue_attributes(
                    QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]["ApproximateNumberOfMessages"]
                == "0"
            ),
            timeout=60,
        )
        assert len(runs(client, name)) == 1
        client.delete(f"/api/v1/schedules/{name}")
