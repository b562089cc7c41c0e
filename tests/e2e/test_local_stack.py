"""A user's view of `make dev`: the old service's curl workflow, the SQS producer path,
failures, listing, cancel and logs, all over HTTP against the running local stack."""

from __future__ import annotations

import json
import time
from typing import Any

from kedro_jobs_local.dev_stack import LocalStack

from .conftest import wait_for


def test_the_old_services_workflow(local_stack: LocalStack) -> None:
    with local_stack.client() as client:
        response = client.post(
            "/api/v1/jobs",
            headers={"Content-Type": "application/json"},
            content=json.dumps({"pipeline_name": "data_loading", "parameters": {}}),
        )
        assert response.status_code == 202
        job_id = response.json()["id"]
        assert response.headers["location"] == f"/api/v1/jobs/{job_id}"
        record = wait_for(client, job_id)
        assert record["status"] == "completed", record
        assert record["results"], record
        assert record["execution_time"] > 0
        assert record["completed_at"] >= record["started_at"] >= record["created_at"]
        logs = client.get(f"/api/v1/jobs/{job_id}/logs")
        assert logs.status_code == 200 and "data_loading" in logs.text


def test_parameters_change_the_result(local_stack: LocalStack) -> None:
    with local_stack.client() as client:
        pipelines = client.get("/api/v1/pipelines").json()["pipelines"]
        assert {"data_loading"} <= {p["name"] for p in pipelines}
        small = client.post(
            "/api/v1/jobs",
            json={"pipeline_name": "data_loading", "parameters": {"data_loading": {"n_rows": 10}}},
        ).json()
        large = client.post(
            "/api/v1/jobs",
            json={"pipeline_name": "data_loading", "parameters": {"data_loading": {"n_rows": 50}}},
        ).json()
        small_done, large_done = wait_for(client, small["id"]), wait_for(client, large["id"])
        assert small_done["status"] == large_done["status"] == "completed"
        assert small_done["results"] != large_done["results"]


def test_a_failing_pipeline_ends_failed_with_its_error(local_stack: LocalStack) -> None:
    with local_stack.client() as client:
        job = client.post(
            "/api/v1/jobs",
            json={"pipeline_name": "data_loading", "parameters": {"data_loading": {"n_rows": -1}}},
        ).json()
        record = wait_for(client, job["id"])
        assert record["status"] == "failed"
        assert "Error" in record["error_message"] and "node:" in record["error_message"]


def test_a_message_from_another_system_becomes_a_listed_completed_job(
    local_stack: LocalStack,
) -> None:
    sqs = local_stack.aws("sqs")
    queue_url = sqs.get_queue_url(QueueName="kedro-jobs-queue")["QueueUrl"]
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(
            {"version": 1, "pipeline_name": "data_loading", "idempotency_key": "nightly-2026-11-24"}
        ),
    )
    with local_stack.client() as client:
        deadline = time.monotonic() + 60
        found: list[dict[str, Any]] = []
        while not found and time.monotonic() < deadline:
            jobs = client.get("/api/v1/jobs", params={"limit": 100}).json()["jobs"]
            found = [j for j in jobs if j["source"] == "sqs"]
            time.sleep(0.2)
        assert found, "the foreign message never became a job"
        assert wait_for(client, found[0]["id"])["status"] == "completed"


def test_list_and_paginate_past_one_page(local_stack: LocalStack) -> None:
    with local_stack.client() as client:
        ids = [
            client.post("/api/v1/jobs", json={"pipeline_name": "data_loading"}).json()["id"]
            for _ in range(5)
        ]
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2, "pipeline_name": "data_loading"}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/api/v1/jobs", params=params).json()
            seen.extend(j["id"] for j in page["jobs"])
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen[:5] == ids[::-1]
        assert len(seen) == len(set(seen))


def test_cancel_a_pending_and_a_running_job(local_stack: LocalStack) -> None:
    slow = {"pipeline_name": "reporting", "parameters": {"reporting": {"delay_seconds": 4}}}
    with local_stack.client() as client:
        # Two slow jobs keep both consumers busy, so the third stays pending.
        busy = [client.post("/api/v1/jobs", json=slow).json()["id"] for _ in range(2)]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = [client.get(f"/api/v1/jobs/{j}").json()["status"] for j in busy]
            if states == ["running", "running"]:
                break
            time.sleep(0.1)
        waiting = client.post("/api/v1/jobs", json={"pipeline_name": "hello"}).json()["id"]
        response = client.post(f"/api/v1/jobs/{waiting}/cancel")
        assert response.status_code == 200 and response.json()["status"] == "cancelled"

        running = client.post(f"/api/v1/jobs/{busy[0]}/cancel")
        assert running.status_code == 200 and running.json()["cancel_requested"] is True
        stopped = wait_for(client, busy[0])
        assert stopped["status"] == "cancelled"
        assert stopped["progress"]["completed_nodes"] < stopped["progress"]["total_nodes"]
        assert wait_for(client, busy[1])["status"] == "completed"
        # The cancelled pending job never ran, even once a consumer was free.
        time.sleep(1)
        never = client.get(f"/api/v1/jobs/{waiting}").json()
        assert never["status"] == "cancelled" and never["started_at"] is None


def test_a_dead_lettered_message_fails_its_job(local_stack: LocalStack) -> None:
    sqs = local_stack.aws("sqs")
    ddb = local_stack.aws("dynamodb")
    dlq_url = sqs.get_queue_url(QueueName="kedro-jobs-dlq")["QueueUrl"]
    # A pending job whose message never got through: as if SQS had dead-lettered it.
    job_id = "dlq-e2e-1"
    ddb.put_item(
        TableName="kedro-jobs-jobs",
        Item={
            "id": {"S": job_id}, "pipeline_name": {"S": "hello"}, "user_id": {"S": "anonymous"},
            "status": {"S": "pending"}, "created_at": {"S": "2026-01-01T00:00:00.000000Z"},
            "user_status": {"S": "anonymous#pending"}, "user_pipeline": {"S": "anonymous#hello"},
            "parameters": {"S": "{}"}, "options": {"S": "{}"}, "attempts": {"N": "0"},
        },
    )  # fmt: skip
    sqs.send_message(
        QueueUrl=dlq_url,
        MessageBody=json.dumps({"version": 1, "job_id": job_id, "pipeline_name": "hello"}),
    )
    with local_stack.client() as client:
        record = wait_for(client, job_id, timeout=30)
    assert record["status"] == "failed"
    assert "dead-lettered" in record["error_message"]
