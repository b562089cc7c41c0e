"""Faults against the running local stack, with a Kedro project whose nodes record every
execution, so "ran exactly once" is counted, not assumed."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from kedro_jobs_local.counting_project import counting_stack_env, executions
from kedro_jobs_local.dev_stack import LocalStack, running_local_stack

from .conftest import TERMINAL

JOBS = 100


@pytest.fixture(scope="module")
def counting_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Path]]:
    root = tmp_path_factory.mktemp("faults")
    env, record = counting_stack_env(root, "faults_project")
    # The consumers' invocations last 60 s (the template's shortest ConsumerTimeout); a 55 s
    # safety margin leaves each job a 5 s budget, so a timeout shows within a test.
    env["TIMEOUT_MARGIN_SECONDS"] = "55"
    with running_local_stack(root / "dev.log", workers=3, env=env) as stack:
        yield stack, record


def test_every_message_delivered_twice_runs_once(counting_stack: tuple[LocalStack, Path]) -> None:
    stack, record = counting_stack
    sqs = stack.aws("sqs")
    queue = sqs.get_queue_url(QueueName="kedro-jobs-queue")["QueueUrl"]
    bodies = [
        json.dumps(
            {"version": 1, "pipeline_name": "two_nodes", "parameters": {"x": i},
             "idempotency_key": f"dup-{i}"}
        )
        for i in range(JOBS)
    ]  # fmt: skip
    # Each message twice (two SQS messages, two message ids), the copies in separate batches,
    # while three consumers poll at once.
    for _copy in range(2):
        for start in range(0, JOBS, 10):
            sqs.send_message_batch(
                QueueUrl=queue,
                Entries=[
                    {"Id": str(i), "MessageBody": body}
                    for i, body in enumerate(bodies[start : start + 10])
                ],
            )
    with stack.client() as client:
        deadline = time.monotonic() + 180
        statuses: Counter[str] = Counter()
        while time.monotonic() < deadline:
            jobs, cursor = [], None
            while True:
                params: dict[str, object] = {"limit": 100, "pipeline_name": "two_nodes"}
                if cursor:
                    params["cursor"] = cursor
                page = client.get("/api/v1/jobs", params=params).json()
                jobs.extend(page["jobs"])
                cursor = page["next_cursor"]
                if not cursor:
                    break
            statuses = Counter(j["status"] for j in jobs)
            if statuses["completed"] == JOBS:
                break
            time.sleep(0.5)
    assert statuses == {"completed": JOBS}, statuses
    # Then every duplicate is consumed too (and deleted: it did nothing, successfully).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        attrs = sqs.get_queue_attributes(
            QueueUrl=queue,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if attrs == {
            "ApproximateNumberOfMessages": "0",
            "ApproximateNumberOfMessagesNotVisible": "0",
        }:
            break
        time.sleep(0.5)
    assert attrs["ApproximateNumberOfMessages"] == "0", attrs
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0", attrs
    ran = executions(record)
    # 200 deliveries, 100 jobs, every node of every job exactly once.
    assert ran == Counter(
        {f"start {i}": 1 for i in range(JOBS)} | {f"double {i}": 1 for i in range(JOBS)}
    )
    assert (
        sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]["ApproximateNumberOfMessages"]
        == "0"
    )


def test_timeout_and_cancel_under_load(counting_stack: tuple[LocalStack, Path]) -> None:
    stack, record = counting_stack
    with stack.client() as client:

        def submit(pipeline: str, **params: object) -> str:
            body = {"pipeline_name": pipeline, "parameters": params}
            job_id: str = client.post("/api/v1/jobs", json=body).json()["id"]
            return job_id

        # x values far from the duplicate test's 0..99, to tell the runs apart.
        too_slow = submit("slow", x=1001, seconds=10)
        to_cancel = submit("slow", x=1002, seconds=3)
        load = [submit("two_nodes", x=2000 + i) for i in range(40)]
        deadline = time.monotonic() + 60
        # Cancelled mid-node (its 3 s nap has begun): it must stop at the next boundary.
        while executions(record)["nap 1002"] == 0:
            assert time.monotonic() < deadline, "the job to cancel never started its nap"
            time.sleep(0.1)
        cancelled = client.post(f"/api/v1/jobs/{to_cancel}/cancel").json()
        # Under load the answer may come after the nap outlived the job's 5 s budget: the job
        # is then between two workers, and nothing holding it, it ends cancelled at once.
        assert cancelled["cancel_requested"] is True or cancelled["status"] == "cancelled", (
            cancelled
        )

        def final(job_id: str) -> dict[str, object]:
            end = time.monotonic() + 120
            while True:
                job: dict[str, object] = client.get(f"/api/v1/jobs/{job_id}").json()
                if job["status"] in TERMINAL or time.monotonic() > end:
                    return job
                time.sleep(0.2)

        # Its 10 s node outlives the 5 s budget: stopped there, and (make dev offers Fargate,
        # as local task processes) the job goes on as a task from its last checkpoint.
        moved = final(too_slow)
        assert moved["status"] == "completed", moved
        segments = [(s["compute"], s["ended"]) for s in moved["segments"]]  # type: ignore[attr-defined]
        assert segments[-2:] == [("lambda", "timed_out"), ("fargate", "completed")], segments
        assert final(to_cancel)["status"] == "cancelled"
        assert all(final(j)["status"] == "completed" for j in load)
    time.sleep(1)
    ran = executions(record)
    # The stopped node ran again on Fargate, once; the cancelled job ran no node after it.
    assert ran["nap 1001"] == 2 and ran["finish 1001"] == 1
    assert ran["finish 1002"] == 0 and ran["nap 1002"] == 1
    assert all(ran[f"double {2000 + i}"] == 1 for i in range(40))
