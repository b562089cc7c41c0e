"""A job's run in segments, at the store and the API (moto server): hand-offs between
segments, the next segment's claim, a cancel between segments, the job's time limit, and
what the API accepts for ``compute`` and ``max_job_seconds``."""

from __future__ import annotations

import time
from datetime import timedelta

from kedro_jobs.core.compute import BACKENDS
from kedro_jobs.core.models import Job, Progress, Segment, utcnow
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ApiJobs, ClaimOutcome, RunJobs, SweepJobs
from kedro_jobs.sweeper.sweep import Sweeper

from .conftest import ApiCall, Aws

JOBS = "/api/v1/jobs"


def _running(store: ApiJobs, **fields: object) -> Job:
    run_jobs = RunJobs.over(store)
    job = store.create(
        Job.new(pipeline_name="p", parameters={}, options={}, user_id="alice", **fields)
    )
    claim = run_jobs.claim(job.id, lease_seconds=60, max_attempts=3, user_id="alice")
    assert claim.outcome is ClaimOutcome.CLAIMED and claim.job is not None
    return claim.job


def _hand_off(store: ApiJobs, job: Job, n: int, *, grace: float = 60) -> Job:
    run_jobs = RunJobs.over(store)
    segment = Segment(segment=n, nodes=[f"node{n}"], started_at=utcnow(), ended="continued")
    handed = run_jobs.hand_off(
        job,
        checkpoint=f"s3://b/data/.kedro-jobs/checkpoints/{job.id}/{n}",
        segments=[*(job.segments or []), segment],
        progress=Progress(total_nodes=9, completed_nodes=n),
        lease_seconds=grace,
    )
    assert handed is not None
    return handed


def test_segments_hand_off_and_the_next_claims_at_once_without_using_up_attempts(
    store: ApiJobs,
    run_jobs: RunJobs,
) -> None:
    job = _running(store)
    first_start = job.started_at
    for n in range(1, 6):  # more hand-offs than MAX_ATTEMPTS: none is a lost attempt
        handed = _hand_off(store, job, n)
        assert handed.status is JobStatus.RUNNING and handed.handed_off
        # Its grace lease is live, yet the next segment's claim takes it at once.
        claim = run_jobs.claim(job.id, lease_seconds=60, max_attempts=3)
        assert claim.outcome is ClaimOutcome.CLAIMED and claim.job is not None, claim
        job = claim.job
        assert job.continuations == n and job.attempts == n + 1 and not job.handed_off
        assert job.started_at == first_start  # the job started with its first segment
        assert job.checkpoint and job.checkpoint.endswith(f"/{n}")
        assert [s.segment for s in job.segments or []] == list(range(1, n + 1))
    # A duplicate delivery of the continuation finds it running under a live lease.
    assert run_jobs.claim(job.id, lease_seconds=60, max_attempts=3).outcome is ClaimOutcome.BUSY
    # The run before the hand-off no longer owns it: its late writes are fenced off.
    assert run_jobs.report_progress(job.model_copy(update={"attempts": 1}), Progress()) is None


def test_a_cancel_between_segments_ends_the_job_at_once(store: ApiJobs, run_jobs: RunJobs) -> None:
    job = _running(store)
    _hand_off(store, job, 1)
    cancelled = store.request_cancel(job.id, "alice")
    assert cancelled.status is JobStatus.CANCELLED
    assert "between two segments" in (cancelled.error_message or "")
    # The continuation message then finds it finished, and nothing runs.
    assert run_jobs.claim(job.id, lease_seconds=60, max_attempts=3).outcome is ClaimOutcome.FINISHED


def test_a_lost_continuation_is_sent_again_by_the_sweeper(
    store: ApiJobs, run_jobs: RunJobs, aws: Aws
) -> None:
    from kedro_jobs.core.queue import JobQueue
    from kedro_jobs.core.settings import get_settings

    job = _running(store)
    _hand_off(store, job, 1, grace=0.5)
    time.sleep(0.6)
    queue = JobQueue(aws.resources.queue_url, sqs=aws.sqs)
    report = Sweeper(get_settings(), store=SweepJobs.over(store), queue=queue).sweep()
    assert report.resent == [job.id]
    [message] = aws.messages()
    assert job.id in message["Body"]
    claim = run_jobs.claim(job.id, lease_seconds=60, max_attempts=3)
    assert claim.outcome is ClaimOutcome.CLAIMED and claim.job is not None
    assert claim.job.continuations == 1 and claim.job.checkpoint


def test_a_fargate_job_is_dispatched_once_per_window(store: ApiJobs, run_jobs: RunJobs) -> None:
    job = store.create(
        Job.new(pipeline_name="p", parameters={}, options={}, user_id="a", compute="fargate")
    )
    until = time.time() + 600
    assert run_jobs.mark_dispatched(job.id, until=until)
    assert not run_jobs.mark_dispatched(job.id, until=until)  # a duplicate delivery
    run_jobs.dispatched(job.id, task_arn=None)  # the launch failed: the next may ask at once
    assert run_jobs.mark_dispatched(job.id, until=until)
    run_jobs.dispatched(job.id, task_arn="arn:aws:ecs:us-east-1:1:task/c/abc")
    found = store.get(job.id)
    assert found is not None and found.task_arn == "arn:aws:ecs:us-east-1:1:task/c/abc"
    assert found.status is JobStatus.PENDING  # until its task claims it


def test_compute_and_max_job_seconds_are_checked_on_submit(api_call: ApiCall, aws: Aws) -> None:
    status, body, _ = api_call("POST", JOBS, body={"pipeline_name": "p", "compute": "gpu"})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "compute"]
    status, body, _ = api_call("POST", JOBS, body={"pipeline_name": "p", "compute": "fargate"})
    assert status == 422 and 'compute "fargate" is not offered' in body["detail"]
    over = {"pipeline_name": "p", "max_job_seconds": 21_601}
    status, body, _ = api_call("POST", JOBS, body=over)
    assert status == 422 and "over this deployment's limit of 21600 s" in body["detail"]
    assert aws.items() == [] and aws.messages() == []

    api_call.configure(fargate_cluster="jobs")
    body = {"pipeline_name": "p", "compute": "fargate", "max_job_seconds": 3600}
    status, job, _ = api_call("POST", JOBS, body=body)
    assert status == 202 and job["compute"] == "fargate" and job["max_job_seconds"] == 3600
    status, retried, _ = api_call("POST", f"{JOBS}/{job['id']}/cancel")
    status, retried, _ = api_call("POST", f"{JOBS}/{job['id']}/retry")
    assert status == 202 and retried["compute"] == "fargate"
    assert retried["max_job_seconds"] == 3600


def test_the_compute_backends_are_listed_with_what_this_deployment_offers(
    api_call: ApiCall,
) -> None:
    status, body, _ = api_call("GET", "/api/v1/compute")
    assert status == 200
    by_name = {b["name"]: b for b in body["backends"]}
    assert list(by_name) == list(BACKENDS)  # the registry's, in its order
    assert by_name["lambda"]["default"] and by_name["lambda"]["offered"]
    assert by_name["lambda"]["description"] == "continues across invocations"
    # No cluster: listed, not offered, saying why (the 422 a submission asking for it gets).
    fargate = by_name["fargate"]
    assert not fargate["offered"] and not fargate["default"]
    assert 'compute "fargate" is not offered' in fargate["reason"]

    api_call.configure(fargate_cluster="jobs")
    status, body, _ = api_call("GET", "/api/v1/compute")
    assert all(b["offered"] and b["reason"] is None for b in body["backends"])


def test_a_job_past_its_time_limit_is_not_claimed_into_another_segment(store: ApiJobs) -> None:
    """The consumer checks the limit before a segment runs (consumer/segments.py); here the
    record it reads: started long ago, handed off."""
    from kedro_jobs.consumer.segments import budget_for
    from kedro_jobs.core.settings import get_settings

    job = _running(store, max_job_seconds=60)
    job = job.model_copy(update={"started_at": utcnow() - timedelta(seconds=61)})
    budget = budget_for(job, get_settings(), 900)
    assert budget.over and not budget.may_continue
