"""Jobs with ``compute: fargate`` against the moto server's ECS: the API accepts them, the
consumer handler (a real SQS event) starts one task per job with the right definition,
network and command, and the task's entry point then runs the job like any consumer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kedro_jobs.consumer import handler as consumer_handler
from kedro_jobs.consumer import task as task_module
from kedro_jobs.consumer.dispatch import NO_FARGATE
from kedro_jobs.core.aws import client
from kedro_jobs.core.compute import JOB_TAG, EcsTaskLauncher, launcher_from_settings
from kedro_jobs.core.settings import get_settings
from kedro_jobs.core.store import ApiJobs
from kedro_jobs_local.counting_project import use_record
from kedro_jobs_local.lambda_context import LocalContext
from kedro_jobs_local.lambda_events import sqs_event
from kedro_jobs_local.moto_server import MotoServer

from .conftest import ApiCall, Aws, Ecs

pytestmark = pytest.mark.integration


@pytest.fixture
def ecs(
    aws: Aws,
    moto_server: MotoServer,
    api_call: ApiCall,
    kedro_project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_functions: Callable[[], None],
) -> Ecs:
    """The deployment's Fargate settings in the environment, as the template sets them; the
    handler's consumer and the API built from them."""
    cluster = Ecs(moto_server.endpoint_url)
    for key, value in cluster.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KEDRO_PROJECT_PATH", str(kedro_project))
    use_record(tmp_path / "executions.txt")
    fresh_functions()
    api_call.configure()
    # What the launcher sends (moto's task shape has no networkConfiguration to read back).
    client("ecs").meta.events.register("provide-client-params.ecs.RunTask", cluster.record)
    return cluster


def deliver(body: str, message_id: str = "m-1") -> dict[str, Any]:
    event = sqs_event(body, message_ids=[message_id])
    result: dict[str, Any] = consumer_handler.handler(event, LocalContext(30))
    return result


def submit(api_call: ApiCall, pipeline: str = "two_nodes") -> dict[str, Any]:
    status, body, _ = api_call(
        "POST",
        "/api/v1/jobs",
        body={"pipeline_name": pipeline, "parameters": {"x": 3}, "compute": "fargate"},
    )
    assert status == 202, body
    assert body["compute"] == "fargate"
    job: dict[str, Any] = body
    return job


def queued_body(aws: Aws) -> str:
    messages = aws.messages()
    assert len(messages) == 1
    return str(messages[0]["Body"])


def test_a_fargate_job_starts_one_task_then_the_task_runs_it(
    ecs: Ecs, aws: Aws, api_call: ApiCall, store: ApiJobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(launcher_from_settings(get_settings()), EcsTaskLauncher)
    job = submit(api_call)
    body = queued_body(aws)

    assert deliver(body) == {"batchItemFailures": []}
    tasks = ecs.tasks()
    assert len(tasks) == 1
    task = tasks[0]
    assert task["clusterArn"] == ecs.cluster_arn
    assert task["taskDefinitionArn"] == ecs.task_definition
    assert task["launchType"] == "FARGATE"
    assert task["overrides"]["containerOverrides"] == [{"name": "consumer", "command": [job["id"]]}]
    assert task["startedBy"] == f"kedro-jobs/{job['id']}"
    assert {"key": JOB_TAG, "value": job["id"]} in task["tags"]
    subnet = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}["subnetId"]
    assert subnet == ecs.subnets[0]
    [request] = ecs.requests
    assert request["networkConfiguration"] == {
        "awsvpcConfiguration": {
            "subnets": ecs.subnets,
            "securityGroups": [ecs.security_group],
            "assignPublicIp": "ENABLED",
        }
    }
    assert 0 < len(request["clientToken"]) <= 64
    recorded = store.get(job["id"])
    assert recorded is not None
    assert recorded.task_arn == task["taskArn"]
    assert str(recorded.status) == "pending"  # until the task claims it

    # SQS delivers at least once: a second delivery asks for no second task.
    assert deliver(body, "m-2") == {"batchItemFailures": []}
    assert len(ecs.tasks()) == 1
    assert len(ecs.requests) == 1

    # The task's entry point, in-process: claims, runs and records the job.
    monkeypatch.setenv(task_module.TASK_ID_ENV, task["taskArn"])
    assert task_module.main([job["id"]]) == 0
    done = store.get(job["id"])
    assert done is not None
    assert str(done.status) == "completed", done.error_message
    assert done.results is not None
    assert [(s.compute, s.invocation, s.ended) for s in done.segments or []] == [
        ("fargate", task["taskArn"], "completed")
    ]
    # A task started again for a finished job does nothing, and says so.
    assert task_module.main([job["id"]]) == task_module.NOT_RUN


def test_a_failing_fargate_job_exits_non_zero(
    ecs: Ecs, aws: Aws, api_call: ApiCall, store: ApiJobs
) -> None:
    job = submit(api_call, "failing")
    assert task_module.main([job["id"]]) == task_module.EXIT_CODES["failed"]
    failed = store.get(job["id"])
    assert failed is not None and str(failed.status) == "failed"
    assert failed.segments is not None and failed.segments[0].invocation.startswith("local:")


def test_without_a_launcher_the_job_fails_saying_why(
    ecs: Ecs, aws: Aws, api_call: ApiCall, store: ApiJobs
) -> None:
    job = submit(api_call)
    consumer_handler.consumer().dispatcher.launchers = {}  # a deployment without a cluster
    assert deliver(queued_body(aws)) == {"batchItemFailures": []}
    failed = store.get(job["id"])
    assert failed is not None
    assert str(failed.status) == "failed"
    assert failed.error_message == NO_FARGATE
    assert ecs.tasks() == []


def test_a_launch_failure_leaves_the_job_pending_and_retryable(
    ecs: Ecs, aws: Aws, api_call: ApiCall, store: ApiJobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = submit(api_call)
    body = queued_body(aws)
    good = consumer_handler.consumer().dispatcher.launchers["fargate"]
    unknown = get_settings().model_copy(update={"fargate_cluster": "no-such-cluster"})
    consumer_handler.consumer().dispatcher.launchers["fargate"] = EcsTaskLauncher(unknown)

    result = deliver(body)
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == ["m-1"]
    pending = store.get(job["id"])
    assert pending is not None
    assert str(pending.status) == "pending"
    assert pending.task_arn is None
    assert not pending.dispatch_due  # the next delivery may ask at once
    assert ecs.tasks() == []

    # The next delivery, with the cluster there, starts the task.
    consumer_handler.consumer().dispatcher.launchers["fargate"] = good
    assert deliver(body, "m-2") == {"batchItemFailures": []}
    assert len(ecs.tasks()) == 1


def test_ecs_failures_in_the_response_are_a_dependency_failure() -> None:
    from kedro_jobs.core.errors import DependencyUnavailable

    class Refusing:
        def run_task(self, **_: Any) -> dict[str, Any]:
            return {"tasks": [], "failures": [{"reason": "RESOURCE:ENI", "arn": "arn:x"}]}

    launcher = EcsTaskLauncher(
        get_settings().model_copy(update={"fargate_cluster": "c"}), Refusing()
    )
    with pytest.raises(DependencyUnavailable, match="RESOURCE:ENI"):
        launcher.launch("job-1", token="t" * 100)
    long_token = launcher.request("job-1", token="t" * 100)["clientToken"]
    assert len(long_token) == 64


def test_a_node_that_outlives_a_lambda_invocation_moves_the_job_to_fargate(
    ecs: Ecs, aws: Aws, api_call: ApiCall, store: ApiJobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, job, _ = api_call(
        "POST",
        "/api/v1/jobs",
        body={"pipeline_name": "slow_start", "parameters": {"x": 2, "seconds": 4}},
    )
    assert status == 202 and job["compute"] == "lambda"
    # An invocation with less time than the first node needs.
    short = LocalContext(get_settings().timeout_margin_seconds + 1.5)
    event = sqs_event(queued_body(aws), message_ids=["m-1"])
    assert consumer_handler.handler(event, short) == {"batchItemFailures": []}
    moved = store.get(job["id"])
    assert moved is not None and str(moved.status) == "running" and moved.handed_off
    assert moved.compute == "fargate"
    [(compute, ended)] = [(s.compute, s.ended) for s in moved.segments or []]
    assert (compute, ended) == ("lambda", "timed_out")

    # Its message now asks for Fargate: one task, which runs the job to the end.
    body = queued_body(aws)
    assert json.loads(body)["compute"] == "fargate"
    assert deliver(body, "m-2") == {"batchItemFailures": []}
    [task] = ecs.tasks()
    monkeypatch.setenv(task_module.TASK_ID_ENV, task["taskArn"])
    assert task_module.main([job["id"]]) == 0
    done = store.get(job["id"])
    assert done is not None and str(done.status) == "completed", done.error_message
    assert done.results == {"finished": {"value": 2}}
    assert [(s.compute, s.ended) for s in done.segments or []] == [
        ("lambda", "timed_out"),
        ("fargate", "completed"),
    ]
