"""Jobs nothing works on, on a real moto server: the heartbeat keeps a run's short lease,
the sweeper (a Query on the sparse `sweep` index) sends abandoned and never-claimed jobs
again or ends them, a cancel with no live consumer ends the job at once, and a retryable
failure's record comes back within seconds, not after the visibility timeout."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

import kedro_jobs.consumer.handler  # noqa: F401 - the consumer's parent logger
from kedro_jobs.consumer.delivery import Consumer
from kedro_jobs.core.artifacts import ArtifactStore
from kedro_jobs.core.errors import DependencyUnavailable
from kedro_jobs.core.models import Job
from kedro_jobs.core.queue import JobQueue
from kedro_jobs.core.settings import Settings
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ClaimOutcome, JobStore
from kedro_jobs.sweeper.sweep import Sweeper

from .conftest import Aws

AFTER = 180  # SWEEP_AFTER_SECONDS


@pytest.fixture
def settings(aws: Aws) -> Settings:
    return Settings(
        jobs_table_name=aws.resources.table_name,
        jobs_queue_url=aws.resources.queue_url,
        max_attempts=3,
        sweep_after_seconds=AFTER,
    )


@pytest.fixture
def sweeper(settings: Settings, store: JobStore, aws: Aws) -> Sweeper:
    return Sweeper(settings, store=store, queue=JobQueue(settings.jobs_queue_url, sqs=aws.sqs))


def _job(store: JobStore) -> Job:
    return store.create(
        Job.new(pipeline_name="two_nodes", parameters={"x": 1}, options={}, user_id="u")
    )


def _sent(aws: Aws) -> list[str]:
    return [json.loads(m["Body"])["job_id"] for m in aws.messages()]


def _abandoned(store: JobStore, job: Job) -> Job:
    """Claimed by a consumer that then died: its lease has expired."""
    claim = store.claim(job.id, lease_seconds=0.05, max_attempts=3, user_id="u")
    assert claim.outcome is ClaimOutcome.CLAIMED and claim.job is not None
    time.sleep(0.1)
    return claim.job


def test_a_job_whose_consumer_died_is_sent_again_once_and_taken_over(
    store: JobStore, sweeper: Sweeper, aws: Aws
) -> None:
    live = _job(store)
    store.claim(live.id, lease_seconds=60, max_attempts=3, user_id="u")
    dead = _abandoned(store, _job(store))
    report = sweeper.sweep()
    assert report.resent == [dead.id]  # the live one is left alone
    assert sweeper.sweep().resent == []  # not again while its message has its time
    assert _sent(aws) == [dead.id]
    again = store.claim(dead.id, lease_seconds=60, max_attempts=3)
    assert again.outcome is ClaimOutcome.CLAIMED and again.job is not None
    assert again.job.attempts == 2
    # The dead run's late writes are fenced off by the attempt number.
    assert store.heartbeat(dead, lease_seconds=60) is None
    assert store.finish(dead, JobStatus.COMPLETED) is None


def test_the_last_attempt_abandoned_fails_the_job_saying_so(
    store: JobStore, sweeper: Sweeper
) -> None:
    job = _job(store)
    for _ in range(3):  # three consumers claimed it and died
        assert store.claim(job.id, lease_seconds=0.05, max_attempts=3).job is not None
        time.sleep(0.1)
    assert sweeper.sweep().failed == [job.id]
    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert "gave up after 3 attempt(s)" in (failed.error_message or "")


def test_a_cancel_while_no_consumer_is_alive_ends_the_job_at_once(
    store: JobStore, aws: Aws
) -> None:
    job = _abandoned(store, _job(store))
    cancelled = store.request_cancel(job.id, "u")
    assert cancelled.status is JobStatus.CANCELLED
    # A late or re-sent message finds it finished: nothing of it runs again.
    assert store.claim(job.id, lease_seconds=60, max_attempts=3).outcome is ClaimOutcome.FINISHED


def test_a_cancel_asked_just_before_the_consumer_died_is_honoured_by_the_sweeper(
    store: JobStore, sweeper: Sweeper
) -> None:
    job = _job(store)
    claim = store.claim(job.id, lease_seconds=1, max_attempts=3, user_id="u")
    assert claim.job is not None
    assert store.request_cancel(job.id, "u").cancel_requested  # the consumer was alive
    assert store.heartbeat(claim.job, lease_seconds=1) is True  # it hears the cancel
    time.sleep(1.1)  # ... and dies before the next node
    assert sweeper.sweep().cancelled == [job.id]
    assert store.get(job.id).status is JobStatus.CANCELLED  # type: ignore[union-attr]
    assert store.claim(job.id, lease_seconds=60, max_attempts=3).outcome is ClaimOutcome.FINISHED


def test_a_heartbeat_keeps_the_lease_alive(store: JobStore, sweeper: Sweeper) -> None:
    job = _job(store)
    claim = store.claim(job.id, lease_seconds=0.5, max_attempts=3, user_id="u")
    assert claim.job is not None
    for _ in range(4):
        time.sleep(0.3)
        assert store.heartbeat(claim.job, lease_seconds=0.5) is False  # owned, no cancel
    assert sweeper.sweep().resent == []
    assert store.claim(job.id, lease_seconds=60, max_attempts=3).outcome is ClaimOutcome.BUSY


def test_a_pending_job_never_taken_is_sent_again_then_failed(
    store: JobStore, sweeper: Sweeper, aws: Aws
) -> None:
    job = _job(store)
    start = time.time()
    assert sweeper.sweep(now=start + AFTER - 5).resent == []  # young: its message is coming
    for n in range(1, 4):
        assert sweeper.sweep(now=start + n * (AFTER + 1)).resent == [job.id]
    assert _sent(aws) == [job.id] * 3
    assert sweeper.sweep(now=start + 4 * (AFTER + 1)).failed == [job.id]
    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert "no consumer took it" in (failed.error_message or "")
    # Finished jobs leave the sweeper's index.
    assert store.stranded(JobStatus.PENDING, due_before=start + 10**6) == []


def test_a_job_claimed_after_the_sweeper_found_it_is_not_sent_again(store: JobStore) -> None:
    job = _job(store)
    [found] = store.stranded(JobStatus.PENDING, due_before=time.time() + AFTER + 1)
    store.claim(job.id, lease_seconds=60, max_attempts=3, user_id="u")
    assert store.mark_resent(found, next_due=time.time()) is False
    assert store.fail_stranded(found, "never taken") is None
    assert store.get(job.id).status is JobStatus.RUNNING  # type: ignore[union-attr]


def test_a_retryable_failure_comes_back_within_seconds(
    aws: Aws, settings: Settings, tmp_path: Path
) -> None:
    body = json.dumps({"version": 1, "pipeline_name": "two_nodes"})
    aws.sqs.send_message(QueueUrl=aws.resources.queue_url, MessageBody=body)
    [message] = aws.messages()
    gone = settings.model_copy(update={"jobs_table_name": "table-that-is-gone"})
    consumer = Consumer(
        gone,
        store=JobStore(gone.jobs_table_name, dynamodb=aws.dynamodb),
        artifacts=ArtifactStore(aws.resources.bucket, s3=aws.s3),
        runner_factory=lambda: pytest.fail("no job should run"),  # type: ignore[arg-type,return-value]
        queue=JobQueue(aws.resources.queue_url, sqs=aws.sqs),
    )
    with pytest.raises(DependencyUnavailable):
        consumer.handle(
            message["Body"],
            message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            receive_count=1,
        )
    # The queue's visibility timeout is 360 s here; the backoff makes it back in <= 5 s.
    back: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while not back and time.monotonic() < deadline:
        back = aws.sqs.receive_message(
            QueueUrl=aws.resources.queue_url, WaitTimeSeconds=2, AttributeNames=["All"]
        ).get("Messages", [])
    assert back and back[0]["MessageId"] == message["MessageId"]
    assert back[0]["Attributes"]["ApproximateReceiveCount"] == "2"
