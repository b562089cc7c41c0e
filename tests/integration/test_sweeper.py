"""Jobs nothing works on, on a real moto server: the heartbeat keeps a run's short lease,
the sweeper (a Query on the sparse `sweep` index) sends abandoned and never-claimed jobs
again or ends them, a cancel with no live consumer ends the job at once, and a retryable
failure's record comes back within seconds, not after the visibility timeout."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

import kedro_jobs.consumer.handler  # noqa: F401 - the consumer's parent logger
from kedro_jobs.consumer.delivery import Consumer
from kedro_jobs.core.artifacts import ArtifactStore
from kedro_jobs.core.errors import DependencyUnavailable
from kedro_jobs.core.liveness import Limits
from kedro_jobs.core.models import Job
from kedro_jobs.core.queue import JobQueue
from kedro_jobs.core.settings import Settings
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ApiJobs, ClaimOutcome, RunJobs, SweepJobs
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
def sweeper(settings: Settings, sweep_jobs: SweepJobs, aws: Aws) -> Sweeper:
    return Sweeper(settings, store=sweep_jobs, queue=JobQueue(settings.jobs_queue_url, sqs=aws.sqs))


def _job(store: ApiJobs) -> Job:
    return store.create(
        Job.new(pipeline_name="two_nodes", parameters={"x": 1}, options={}, user_id="u")
    )


def _sent(aws: Aws) -> list[str]:
    return [json.loads(m["Body"])["job_id"] for m in aws.messages()]


def _abandoned(store: ApiJobs, job: Job) -> Job:
    """Claimed by a consumer that then died: its lease has expired."""
    run_jobs = RunJobs.over(store)
    claim = run_jobs.claim(job.id, lease_seconds=0.05, max_attempts=3, user_id="u")
    assert claim.outcome is ClaimOutcome.CLAIMED and claim.job is not None
    time.sleep(0.1)
    return claim.job


def test_a_job_whose_consumer_died_is_sent_again_once_and_taken_over(
    store: ApiJobs, run_jobs: RunJobs, sweeper: Sweeper, aws: Aws
) -> None:
    live = _job(store)
    run_jobs.claim(live.id, lease_seconds=60, max_attempts=3, user_id="u")
    dead = _abandoned(store, _job(store))
    report = sweeper.sweep()
    assert report.resent == [dead.id]  # the live one is left alone
    assert sweeper.sweep().resent == []  # not again while its message has its time
    assert _sent(aws) == [dead.id]
    again = run_jobs.claim(dead.id, lease_seconds=60, max_attempts=3)
    assert again.outcome is ClaimOutcome.CLAIMED and again.job is not None
    assert again.job.attempts == 2
    # The dead run's late writes are fenced off by the attempt number.
    assert run_jobs.heartbeat(dead, lease_seconds=60) is None
    assert run_jobs.finish(dead, JobStatus.COMPLETED) is None


def test_the_last_attempt_abandoned_fails_the_job_saying_so(
    store: ApiJobs, run_jobs: RunJobs, sweeper: Sweeper
) -> None:
    job = _job(store)
    for _ in range(3):  # three consumers claimed it and died
        assert run_jobs.claim(job.id, lease_seconds=0.05, max_attempts=3).job is not None
        time.sleep(0.1)
    assert sweeper.sweep().failed == [job.id]
    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert "gave up after 3 attempt(s)" in (failed.error_message or "")


def test_a_cancel_while_no_consumer_is_alive_ends_the_job_at_once(
    store: ApiJobs, run_jobs: RunJobs, aws: Aws
) -> None:
    job = _abandoned(store, _job(store))
    cancelled = store.request_cancel(job.id, "u")
    assert cancelled.status is JobStatus.CANCELLED
    # A late or re-sent message finds it finished: nothing of it runs again.
    assert run_jobs.claim(job.id, lease_seconds=60, max_attempts=3).outcome is ClaimOutcome.FINISHED


def test_a_cancel_asked_just_before_the_consumer_died_is_honoured_by_the_sweeper(
    store: ApiJobs, run_jobs: RunJobs, sweeper: Sweeper
) -> None:
    job = _job(store)
    claim = run_jobs.claim(job.id, lease_seconds=1, max_attempts=3, user_id="u")
    assert claim.job is not None
    assert store.request_cancel(job.id, "u").cancel_requested  # the consumer was alive
    assert run_jobs.heartbeat(claim.job, lease_seconds=1) is True  # it hears the cancel
    time.sleep(1.1)  # ... and dies before the next node
    assert sweeper.sweep().cancelled == [job.id]
    assert store.get(job.id).status is JobStatus.CANCELLED  # type: ignore[union-attr]
    assert run_jobs.claim(job.id, lease_seconds=60, max_attempts=3).outcome is ClaimOutcome.FINISHED


def test_a_heartbeat_keeps_the_lease_alive(
    store: ApiJobs, run_jobs: RunJobs, sweeper: Sweeper
) -> None:
    job = _job(store)
    claim = run_jobs.claim(job.id, lease_seconds=0.5, max_attempts=3, user_id="u")
    assert claim.job is not None
    for _ in range(4):
        time.sleep(0.3)
        assert run_jobs.heartbeat(claim.job, lease_seconds=0.5) is False  # owned, no cancel
    assert sweeper.sweep().resent == []
    assert run_jobs.claim(job.id, lease_seconds=60, max_attempts=3).outcome is ClaimOutcome.BUSY


def test_a_pending_job_never_taken_is_sent_again_then_failed(
    store: ApiJobs, sweep_jobs: SweepJobs, sweeper: Sweeper, aws: Aws
) -> None:
    job = _job(store)
    start = time.time()
    assert sweeper.sweep(now=start + AFTER - 5).resent == []  # young: its message is coming
    # Its message was never sent: sent once; then it is on the queue, and looks are counted.
    assert sweeper.sweep(now=start + AFTER + 1).resent == [job.id]
    for n in range(2, 4):
        assert sweeper.sweep(now=start + n * (AFTER + 1)).resent == []
    assert _sent(aws) == [job.id]  # never multiplied
    assert sweeper.sweep(now=start + 4 * (AFTER + 1)).failed == [job.id]
    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert "no consumer took it" in (failed.error_message or "")
    # Finished jobs leave the sweeper's index.
    assert sweep_jobs.stranded(JobStatus.PENDING, due_before=start + 10**6) == []


def test_a_job_claimed_after_the_sweeper_found_it_is_not_sent_again(
    store: ApiJobs, run_jobs: RunJobs, sweep_jobs: SweepJobs
) -> None:
    job = _job(store)
    [found] = sweep_jobs.stranded(JobStatus.PENDING, due_before=time.time() + AFTER + 1)
    run_jobs.claim(job.id, lease_seconds=60, max_attempts=3, user_id="u")
    assert sweep_jobs.mark_looked(found, next_due=time.time(), looks=1) is False
    assert sweep_jobs.fail_stranded(found, "never taken") is None
    assert store.get(job.id).status is JobStatus.RUNNING  # type: ignore[union-attr]


def test_a_retryable_failure_comes_back_within_seconds(
    aws: Aws, settings: Settings, tmp_path: Path
) -> None:
    body = json.dumps({"version": 1, "pipeline_name": "two_nodes"})
    aws.sqs.send_message(QueueUrl=aws.resources.queue_url, MessageBody=body)
    [message] = aws.messages()
    # The table throttles every request of this consumer's client, as DynamoDB answers one
    # over its provisioned throughput (botocore's own retries then give up).
    throttled = boto3.client("dynamodb", endpoint_url=aws.dynamodb.meta.endpoint_url)
    throttled.meta.events.register("before-call.dynamodb", _throttle)
    consumer = Consumer(
        settings,
        store=RunJobs(settings.jobs_table_name, dynamodb=throttled),
        artifacts=ArtifactStore(aws.resources.bucket, s3=aws.s3),
        runner_factory=lambda: pytest.fail("no job should run"),  # type: ignore[arg-type,return-value]
        queue=JobQueue(aws.resources.queue_url, sqs=aws.sqs),
    )
    with pytest.raises(DependencyUnavailable) as raised:
        consumer.handle(
            message["Body"],
            message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            receive_count=1,
        )
    assert "ProvisionedThroughputExceededException" in str(raised.value)
    # The queue's visibility timeout is 360 s here; the backoff makes it back in <= 5 s.
    back: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while not back and time.monotonic() < deadline:
        back = aws.sqs.receive_message(
            QueueUrl=aws.resources.queue_url, WaitTimeSeconds=2, AttributeNames=["All"]
        ).get("Messages", [])
    assert back and back[0]["MessageId"] == message["MessageId"]
    assert back[0]["Attributes"]["ApproximateReceiveCount"] == "2"


def _throttle(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
    error = {"Code": "ProvisionedThroughputExceededException", "Message": "Rate exceeded"}
    return AWSResponse("", 400, {}, None), {
        "Error": error,
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }


# The template's defaults (template.yaml, core/settings.py): the consumer's timeout 900 s, so
# the queue's visibility timeout 5400 s; SWEEP_AFTER_SECONDS 180; MAX_ATTEMPTS 3; a sweep a
# minute. A backlog is longer than SWEEP_AFTER_SECONDS x MAX_ATTEMPTS when one consumer
# takes longer than that to reach the last job.
VISIBILITY = 5400
SWEEP_EVERY = 60.0


@dataclass
class Backlog:
    failed: set[str] = field(default_factory=set)
    resent: int = 0
    most_messages: int = 0  # on the queue (visible + in flight), at any sweep
    most_excess: int = 0  # messages on the queue beyond the jobs still waiting or running


def _one_consumer_backlog(
    settings: Settings, store: ApiJobs, aws: Aws, *, jobs: int, run_seconds: float
) -> Backlog:
    """``jobs`` jobs submitted at once (each with its message, as the API sends it), one
    consumer taking them one by one, each running ``run_seconds``; the sweeper runs every
    minute meanwhile. Time is injected: the sweeper is given the simulated time, and the
    consumer's lease is set to end when its run would."""
    run_jobs = RunJobs.over(store)
    sweep_jobs = SweepJobs.over(store)
    queue = JobQueue(settings.jobs_queue_url, sqs=aws.sqs)
    sweeper = Sweeper(settings, store=sweep_jobs, queue=queue)
    for _ in range(jobs):
        queue.send(_job(store).to_message())
    start = time.time()
    clock, next_sweep, seen = start, start + SWEEP_EVERY, Backlog()

    def sweeps_until(moment: float) -> None:
        nonlocal next_sweep
        while next_sweep <= moment:
            report = sweeper.sweep(now=next_sweep)
            seen.failed |= set(report.failed)
            seen.resent += len(report.resent)
            messages = sum(queue.depth())
            live = sweep_jobs.count_live(JobStatus.PENDING) + sweep_jobs.count_live(
                JobStatus.RUNNING
            )
            seen.most_messages = max(seen.most_messages, messages)
            seen.most_excess = max(seen.most_excess, messages - live)
            next_sweep += SWEEP_EVERY

    while True:
        got = aws.sqs.receive_message(
            QueueUrl=settings.jobs_queue_url, VisibilityTimeout=VISIBILITY, WaitTimeSeconds=0
        ).get("Messages", [])
        if not got:
            break
        job_id = json.loads(got[0]["Body"])["job_id"]
        lease = clock + run_seconds + settings.job_lease_seconds - time.time()
        claim = run_jobs.claim(job_id, lease_seconds=lease, max_attempts=3, user_id="u")
        if claim.outcome is ClaimOutcome.CLAIMED and claim.job is not None:
            sweeps_until(clock + run_seconds)  # the sweeper runs while the job does
            clock += run_seconds
            assert run_jobs.finish(claim.job, JobStatus.COMPLETED) is not None
        aws.sqs.delete_message(
            QueueUrl=settings.jobs_queue_url, ReceiptHandle=got[0]["ReceiptHandle"]
        )
    sweeps_until(clock + settings.sweep_after_seconds * (settings.max_attempts + 1))
    return seen


@pytest.mark.parametrize(
    ("after", "max_attempts", "run_seconds", "jobs"),
    # At the template's defaults, 21 jobs of 55 s: 1155 s of work, over twice 180 s x 3.
    # Shortened: 20 jobs of 20 s, 400 s of work where 30 s x 1 used to be the limit.
    [(180, 3, 55.0, 21), (30, 1, 20.0, 20)],
    ids=["template-defaults", "shortened"],
)
def test_jobs_waiting_behind_a_backlog_are_never_failed_nor_multiplied(
    settings: Settings,
    store: ApiJobs,
    aws: Aws,
    after: int,
    max_attempts: int,
    run_seconds: float,
    jobs: int,
) -> None:
    assert jobs * run_seconds > 2 * after * max_attempts
    timed = settings.model_copy(update={"sweep_after_seconds": after, "max_attempts": max_attempts})
    seen = _one_consumer_backlog(timed, store, aws, jobs=jobs, run_seconds=run_seconds)
    assert seen.failed == set()
    assert seen.resent == 0
    assert seen.most_messages <= jobs
    assert seen.most_excess <= 0
    done = [store.get(item["id"]["S"]) for item in aws.items()]
    assert [job.status for job in done if job] == [JobStatus.COMPLETED] * jobs


def test_jobs_no_consumer_takes_end_failed_saying_so_without_multiplying_messages(
    store: ApiJobs, sweeper: Sweeper, aws: Aws, settings: Settings
) -> None:
    queue = JobQueue(settings.jobs_queue_url, sqs=aws.sqs)
    jobs = [_job(store) for _ in range(5)]
    for job in jobs:
        queue.send(job.to_message())
    start, failed, most = time.time(), set(), 0
    moment = start
    while moment < start + 20 * AFTER and len(failed) < len(jobs):
        moment += SWEEP_EVERY
        failed |= set(sweeper.sweep(now=moment).failed)
        most = max(most, sum(queue.depth()))
    assert failed == {job.id for job in jobs}
    assert most == len(jobs)  # their own messages, none sent again
    limits = Limits.of(settings)
    # Each look is at least AFTER after the last, at the first sweep that finds it due.
    assert moment - start <= (AFTER + SWEEP_EVERY) * (limits.max_attempts + 1)
    for job in jobs:
        ended = store.get(job.id)
        assert ended is not None and ended.status is JobStatus.FAILED
        assert "no consumer took it" in (ended.error_message or "")


def test_a_message_taken_by_a_consumer_that_died_before_claiming_is_sent_again(
    store: ApiJobs, run_jobs: RunJobs, sweeper: Sweeper, aws: Aws, settings: Settings
) -> None:
    job = _job(store)
    JobQueue(settings.jobs_queue_url, sqs=aws.sqs).send(job.to_message())
    start = time.time()
    # Received, then the consumer died: the message is invisible for the visibility timeout.
    aws.sqs.receive_message(QueueUrl=settings.jobs_queue_url, VisibilityTimeout=VISIBILITY)
    assert sweeper.sweep(now=start + AFTER + 1).resent == [job.id]
    assert _sent(aws) == [job.id]  # the one sent again, for a live consumer to take
    claim = run_jobs.claim(job.id, lease_seconds=60, max_attempts=3, user_id="u")
    assert claim.outcome is ClaimOutcome.CLAIMED
