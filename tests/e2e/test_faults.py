"""Faults against the running local stack, with a Kedro project whose nodes record every
execution, so "ran exactly once" is counted, not assumed."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.support.kedro_project import RECORD_VAR, executions, write_project

from .conftest import LocalStack, running_local_stack

JOBS = 100


@pytest.fixture(scope="module")
def counting_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Path]]:
    root = tmp_path_factory.mktemp("faults")
    project = write_project(root / "project", package="faults_project")
    record = root / "executions.txt"
    env = {
        "KEDRO_PROJECT_PATH": str(project),
        RECORD_VAR: str(record),
        "KEDRO_JOBS_TEST_RECORD_VALUES": "1",
    }
    with running_local_stack(root / "dev.log", workers=3, env=env) as stack:
        yield stack, record


def test_every_message_delivered_twice_runs_once(counting_stack: tuple[LocalStack, Path]) -> None:
    stack, record = counting_stack
    sqs = boto3.client("sqs", endpoint_url=stack.endpoint_url, region_name="us-east-1")
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
