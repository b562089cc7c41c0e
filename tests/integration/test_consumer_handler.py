"""The consumer Lambda handler with real SQS event payloads against a real moto server, running
a real Kedro project whose nodes count their own executions."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kedro_jobs.consumer import handler as consumer_handler
from kedro_jobs.consumer.delivery import Consumer
from kedro_jobs.core.artifacts import ArtifactStore
from kedro_jobs.core.settings import get_settings
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ApiJobs, ClaimOutcome, RunJobs
from kedro_jobs_local.counting_project import executions
from kedro_jobs_local.lambda_context import LocalContext
from tests.support.containers import reset_singletons
from tests.support.jobs import submitted

from .conftest import Aws, Invoke


def invoke_while(invoke: Invoke, body: str, meanwhile: Callable[[], None]) -> dict[str, Any]:
    """The handler's response to ``body``, with ``meanwhile`` running in a thread."""
    thread = threading.Thread(target=meanwhile)
    thread.start()
    try:
        return invoke(body)
    finally:
        thread.join()


def test_completed_run_records_results_progress_and_log(
    invoke: Invoke, store: ApiJobs, aws: Aws, record: Path
) -> None:
    job, body = submitted(store, "two_nodes", x=21)
    assert invoke(body) == {"batchItemFailures": []}
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED, done
    assert done.results == {"doubled": 42}
    assert done.progress is not None and done.progress.completed_nodes == 2
    assert done.progress.total_nodes == 2
    assert done.execution_time is not None and done.execution_time > 0
    assert done.started_at and done.completed_at and done.attempts == 1
    assert executions(record) == {"start": 1, "double": 1}
    log = ArtifactStore(aws.resources.bucket, s3=aws.s3).get_text(f"logs/{job.id}.log")
    assert log and "double" in log
    assert done.log_location == f"s3://{aws.resources.bucket}/logs/{job.id}.log"
    # The manifest was published on the container's first invocation.
    manifest = ArtifactStore(aws.resources.bucket, s3=aws.s3).get_json("manifest/pipelines.json")
    assert {"two_nodes", "failing", "slow"} <= set(manifest["pipelines"])


def test_a_running_jobs_progress_names_its_node_while_it_runs(
    invoke: Invoke, store: ApiJobs
) -> None:
    # A slow first node: the start is reported while it runs (a quick one's own report
    # would stand for it); then each node boundary.
    job, body = submitted(store, "slow_start", seconds=2.0)
    seen: list[tuple[int, int, str | None]] = []

    def watch() -> None:
        for _ in range(200):
            current = store.get(job.id)
            if current is not None and current.progress is not None:
                p = current.progress
                step = (p.completed_nodes, p.total_nodes, p.current_node)
                if not seen or seen[-1] != step:
                    seen.append(step)
            if current is not None and current.status is JobStatus.COMPLETED:
                return
            time.sleep(0.05)

    assert invoke_while(invoke, body, watch) == {"batchItemFailures": []}
    assert seen[0] == (0, 2, "nap")
    assert seen[-1] == (2, 2, None)


def test_pipeline_error_fails_the_job_and_is_not_retried(
    invoke: Invoke, store: ApiJobs, record: Path
) -> None:
    job, body = submitted(store, "failing")
    assert invoke(body) == {"batchItemFailures": []}
    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert failed.error_message is not None
    assert failed.error_message.startswith("ValueError: boom at 3")
    assert "boom" in failed.error_message.split("(node:")[1]
    assert executions(record) == {"start": 1, "boom": 1}


def test_duplicate_deliveries_run_the_nodes_once(
    invoke: Invoke, store: ApiJobs, record: Path
) -> None:
    job, body = submitted(store, "two_nodes")
    assert invoke(body, body) == {"batchItemFailures": []}  # twice in one batch
    assert invoke(body) == {"batchItemFailures": []}  # and once more later
    assert executions(record) == {"start": 1, "double": 1}
    assert store.get(job.id).status is JobStatus.COMPLETED  # type: ignore[union-attr]


def test_two_consumers_handling_one_message_at_once_run_it_once(
    aws: Aws, store: ApiJobs, kedro_project: Path, record: Path
) -> None:
    from kedro_jobs.runner.runner import KedroRunner

    job, body = submitted(store, "slow", seconds=0.5)
    settings = get_settings()
    consumers = [
        Consumer(
            settings,
            store=RunJobs(aws.resources.table_name),
            artifacts=ArtifactStore(aws.resources.bucket),
            runner_factory=lambda: KedroRunner(kedro_project),
        )
        for _ in range(2)
    ]
    for c in consumers:
        c.runner  # noqa: B018 - bootstrap before the race
    barrier = threading.Barrier(2)

    def consume(c: Consumer) -> None:
        barrier.wait()
        c.process(body, "same-message", LocalContext(30))

    threads = [threading.Thread(target=consume, args=(c,)) for c in consumers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert executions(record) == {"start": 1, "nap": 1, "finish": 1}
    assert store.get(job.id).status is JobStatus.COMPLETED  # type: ignore[union-attr]


def test_expired_lease_is_claimed_again(
    invoke: Invoke, store: ApiJobs, run_jobs: RunJobs, record: Path
) -> None:
    job, body = submitted(store, "two_nodes")
    # A consumer claimed it and died: its lease runs out.
    assert run_jobs.claim(job.id, lease_seconds=0.2, max_attempts=3).outcome is ClaimOutcome.CLAIMED
    time.sleep(0.3)
    assert invoke(body) == {"batchItemFailures": []}
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED and done.attempts == 2
    assert executions(record) == {"start": 1, "double": 1}


def test_max_attempts_then_failed_with_a_message(
    invoke: Invoke, store: ApiJobs, run_jobs: RunJobs, record: Path
) -> None:
    job, body = submitted(store, "two_nodes")
    for _ in range(get_settings().max_attempts):
        assert run_jobs.claim(job.id, lease_seconds=0.1, max_attempts=3).outcome is (
            ClaimOutcome.CLAIMED
        )
        time.sleep(0.15)
    assert invoke(body) == {"batchItemFailures": []}
    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert "gave up after 3 attempt(s)" in (failed.error_message or "")
    assert executions(record) == {}


def test_a_malformed_record_does_not_affect_the_others(
    invoke: Invoke, store: ApiJobs, record: Path
) -> None:
    good, good_body = submitted(store, "two_nodes")
    named, _ = submitted(store, "two_nodes")
    bad_named = json.dumps({"version": 1, "job_id": named.id, "pipeline_name": 7, "user_id": "u"})
    result = invoke(
        "not json at all", good_body, bad_named, message_ids=["poison", "good", "named"]
    )
    # The unreadable one went to the dead-letter queue at once (not reported, so not left on
    # the jobs queue for maxReceiveCount visibility timeouts).
    assert result == {"batchItemFailures": []}
    assert store.get(good.id).status is JobStatus.COMPLETED  # type: ignore[union-attr]
    failed = store.get(named.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert "could not be read" in (failed.error_message or "")
    assert "pipeline_name" in (failed.error_message or "")


def test_a_foreign_message_delivered_twice_makes_one_job(
    invoke: Invoke, store: ApiJobs, record: Path
) -> None:
    body = json.dumps({"version": 1, "pipeline_name": "two_nodes", "parameters": {"x": 5}})
    assert invoke(body, message_ids=["foreign-1"]) == {"batchItemFailures": []}
    assert invoke(body, message_ids=["foreign-1"]) == {"batchItemFailures": []}
    [job] = store.list_jobs("anonymous").jobs
    assert job.source == "sqs" and job.status is JobStatus.COMPLETED
    assert job.results == {"doubled": 10}
    assert executions(record) == {"start": 1, "double": 1}


def test_cancel_between_nodes(invoke: Invoke, store: ApiJobs, record: Path) -> None:
    job, body = submitted(store, "slow", seconds=1.5)

    def cancel_when_running() -> None:
        for _ in range(100):
            current = store.get(job.id)
            if current is not None and current.status is JobStatus.RUNNING:
                store.request_cancel(job.id, "u")
                return
            time.sleep(0.05)

    assert invoke_while(invoke, body, cancel_when_running) == {"batchItemFailures": []}
    cancelled = store.get(job.id)
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
    assert executions(record)["finish"] == 0


def test_a_job_over_its_time_budget_is_stopped(
    invoke: Invoke, store: ApiJobs, record: Path
) -> None:
    # Its first node alone is longer than the invocation: a segment runs at least one node,
    # so it cannot continue elsewhere and is stopped.
    job, body = submitted(store, "slow_start", x=1, seconds=30)
    margin = get_settings().timeout_margin_seconds
    started = time.monotonic()
    assert invoke(body, timeout=margin + 2) == {"batchItemFailures": []}
    assert time.monotonic() - started < 10
    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert "time" in (failed.error_message or "").lower()
    time.sleep(0.2)
    assert executions(record)["finish"] == 0


def test_results_too_large_for_the_item_go_to_s3(invoke: Invoke, store: ApiJobs, aws: Aws) -> None:
    job, body = submitted(store, "big")
    assert invoke(body) == {"batchItemFailures": []}
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED
    assert done.results is None
    assert done.results_location == f"s3://{aws.resources.bucket}/results/{job.id}.json"
    stored = ArtifactStore(aws.resources.bucket, s3=aws.s3).get_json(f"results/{job.id}.json")
    assert len(stored["numbers"]) == 20_000


def test_a_worker_that_dies_fails_the_job_clearly(invoke: Invoke, store: ApiJobs) -> None:
    job, body = submitted(store, "crash")
    assert invoke(body) == {"batchItemFailures": []}
    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert "died" in (failed.error_message or "") or "exit" in (failed.error_message or "")


def test_infrastructure_errors_are_retried(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBS_TABLE_NAME", "table-that-is-gone")
    reset_singletons()
    body = json.dumps({"version": 1, "pipeline_name": "two_nodes"})
    assert invoke(body, message_ids=["m-1"]) == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}


def test_table_throttled_at_the_end_of_a_run_is_retried_to_the_right_state(
    invoke: Invoke, store: ApiJobs, record: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    job, body = submitted(store, "two_nodes", x=4)
    # A 6 s invocation may run the job, with room to spare: its second node must not be
    # left to another segment (the checkpoint allowance is 2 s).
    monkeypatch.setenv("TIMEOUT_MARGIN_SECONDS", "0.5")
    reset_singletons()
    consumer = consumer_handler.consumer()
    real_update = consumer.store.client.update_item
    throttled = {"count": 0}

    def update_item(**kwargs: Any) -> Any:
        # Every write that would finish the job is throttled, for this delivery only.
        if "completed_at" in json.dumps(kwargs) and throttled["count"] < 10:
            throttled["count"] += 1
            error = {
                "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}
            }
            raise ClientError(error, "UpdateItem")  # type: ignore[arg-type]
        return real_update(**kwargs)

    monkeypatch.setattr(consumer.store.client, "update_item", update_item)
    assert invoke(body, timeout=6, message_ids=["m-1"]) == {
        "batchItemFailures": [{"itemIdentifier": "m-1"}]
    }
    assert store.get(job.id).status is JobStatus.RUNNING  # type: ignore[union-attr]
    monkeypatch.setattr(consumer.store.client, "update_item", real_update)
    time.sleep(6.2)  # SQS brings the record back after the lease (the invocation) is over
    assert invoke(body, message_ids=["m-1"]) == {"batchItemFailures": []}
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED and done.attempts == 2
    assert done.results == {"doubled": 8}
