"""The DynamoDB job store on a real moto server: conditional transitions, leases, listing."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from kedro_jobs.core.errors import InvalidCursor, InvalidTransition, JobNotFound
from kedro_jobs.core.models import Job, Progress
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ApiJobs, ClaimOutcome, RunJobs

from .conftest import Aws


def _job(store: ApiJobs, user: str = "alice", pipeline: str = "p", **params: Any) -> Job:
    return store.create(
        Job.new(pipeline_name=pipeline, parameters=params, options={}, user_id=user)
    )


@pytest.mark.parametrize("known_user", [None, "alice"], ids=["read-first", "one-write"])
def test_two_consumers_racing_for_one_job_claim_it_once(
    store: ApiJobs, run_jobs: RunJobs, known_user: str | None
) -> None:
    job = _job(store)
    barrier = threading.Barrier(4)
    outcomes: list[ClaimOutcome] = []

    def claim() -> None:
        barrier.wait()
        outcomes.append(
            run_jobs.claim(job.id, lease_seconds=60, max_attempts=3, user_id=known_user).outcome
        )

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count(ClaimOutcome.CLAIMED) == 1
    assert outcomes.count(ClaimOutcome.BUSY) == 3
    claimed = store.get(job.id)
    assert claimed is not None and claimed.attempts == 1 and claimed.status is JobStatus.RUNNING


def test_a_job_first_seen_by_the_consumer_is_made_claimed_once(
    store: ApiJobs, run_jobs: RunJobs
) -> None:
    job = Job.new(pipeline_name="p", parameters={}, options={}, user_id="bob", source="sqs")
    barrier = threading.Barrier(3)
    made: list[Job | None] = []

    def create() -> None:
        barrier.wait()
        made.append(run_jobs.create_claimed(job, lease_seconds=60))

    threads = [threading.Thread(target=create) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [winner] = [m for m in made if m is not None]
    stored = store.get(job.id)
    assert stored is not None and stored.status is JobStatus.RUNNING and stored.attempts == 1
    assert stored.lease_expires_at == winner.lease_expires_at and stored.started_at is not None
    assert [j.id for j in store.list_jobs("bob", status=JobStatus.RUNNING).jobs] == [job.id]
    # A redelivery finds it running under a live lease.
    redelivered = run_jobs.claim(job.id, lease_seconds=60, max_attempts=3, user_id="bob")
    assert redelivered.outcome is ClaimOutcome.BUSY


def test_a_claim_naming_another_user_does_not_take_the_job(
    store: ApiJobs, run_jobs: RunJobs
) -> None:
    job = _job(store, user="alice")
    claim = run_jobs.claim(job.id, lease_seconds=60, max_attempts=3, user_id="mallory")
    # A message may only change a job its sender could have made: alice's job stays hers,
    # pending, for her own message.
    assert claim.outcome is ClaimOutcome.FOREIGN
    assert store.get(job.id).status is JobStatus.PENDING  # type: ignore[union-attr]
    mine = run_jobs.claim(job.id, lease_seconds=60, max_attempts=3, user_id="alice")
    assert mine.outcome is ClaimOutcome.CLAIMED


def test_a_live_lease_blocks_and_an_expired_one_is_taken_over(
    store: ApiJobs, run_jobs: RunJobs
) -> None:
    job = _job(store)
    first = run_jobs.claim(job.id, lease_seconds=0.5, max_attempts=3)
    assert first.outcome is ClaimOutcome.CLAIMED
    assert first.job is not None and first.job.attempts == 1
    assert first.job.started_at is not None
    assert run_jobs.claim(job.id, lease_seconds=60, max_attempts=3).outcome is ClaimOutcome.BUSY
    time.sleep(0.6)
    second = run_jobs.claim(job.id, lease_seconds=60, max_attempts=3)
    assert second.outcome is ClaimOutcome.CLAIMED
    assert second.job is not None and second.job.attempts == 2
    # The first run lost its fencing token: nothing it writes lands.
    assert run_jobs.finish(first.job, JobStatus.COMPLETED, results={"x": 1}) is None
    assert run_jobs.report_progress(first.job, Progress(total_nodes=2)) is None
    assert run_jobs.finish(second.job, JobStatus.COMPLETED, results={"x": 2}) is not None
    done = store.get(job.id)
    assert done is not None and done.results == {"x": 2}


def test_max_attempts_fails_the_job_with_a_message(store: ApiJobs, run_jobs: RunJobs) -> None:
    job = _job(store)
    for _ in range(2):
        assert run_jobs.claim(job.id, lease_seconds=0.05, max_attempts=2).outcome is (
            ClaimOutcome.CLAIMED
        )
        time.sleep(0.1)
    claim = run_jobs.claim(job.id, lease_seconds=60, max_attempts=2)
    assert claim.outcome is ClaimOutcome.EXHAUSTED
    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert "after 2 attempt(s)" in (failed.error_message or "")
    assert run_jobs.claim(job.id, lease_seconds=60, max_attempts=2).outcome is ClaimOutcome.FINISHED


def test_finished_jobs_are_not_claimed_again(store: ApiJobs, run_jobs: RunJobs) -> None:
    job = _job(store)
    claim = run_jobs.claim(job.id, lease_seconds=60, max_attempts=3)
    assert claim.job is not None
    finished = run_jobs.finish(claim.job, JobStatus.COMPLETED, results={"n": 1}, execution_time=0.5)
    assert finished is not None
    assert finished.completed_at is not None and finished.execution_time == 0.5
    assert store.get(job.id) == finished  # what finish returns is what is stored
    assert run_jobs.claim(job.id, lease_seconds=60, max_attempts=3).outcome is ClaimOutcome.FINISHED


def test_cancel_pending_running_and_finished(store: ApiJobs, run_jobs: RunJobs) -> None:
    pending = _job(store)
    assert store.request_cancel(pending.id, "alice").status is JobStatus.CANCELLED
    with pytest.raises(InvalidTransition):
        store.request_cancel(pending.id, "alice")
    # A cancelled job is never started by a late message.
    assert run_jobs.claim(pending.id, lease_seconds=60, max_attempts=3).outcome is (
        ClaimOutcome.FINISHED
    )

    running = _job(store)
    claim = run_jobs.claim(running.id, lease_seconds=60, max_attempts=3)
    assert claim.job is not None
    assert run_jobs.report_progress(claim.job, Progress(total_nodes=3, completed_nodes=1)) is False
    marked = store.request_cancel(running.id, "alice")
    assert marked.status is JobStatus.RUNNING and marked.cancel_requested
    assert run_jobs.report_progress(claim.job, Progress(total_nodes=3, completed_nodes=2)) is True

    with pytest.raises(JobNotFound):
        store.request_cancel(running.id, "mallory")


def test_fail_pending_and_leave_finished_alone(store: ApiJobs) -> None:
    job = _job(store)
    failed = store.fail(job.id, "could not be queued")
    assert failed is not None and failed.status is JobStatus.FAILED
    assert store.fail(job.id, "again") is None


class _CountingClient:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.inner, name)


def test_listing_pages_newest_first_with_queries_only(aws: Aws) -> None:
    spy = _CountingClient(aws.dynamodb)
    store = ApiJobs(aws.resources.table_name, dynamodb=spy)
    run_jobs = RunJobs.over(store)
    mine = [_job(store, pipeline="a" if i % 2 else "b", i=i).id for i in range(25)]
    _job(store, user="bob")
    seen: list[str] = []
    cursor = None
    while True:
        page = store.list_jobs("alice", limit=10, cursor=cursor)
        seen.extend(j.id for j in page.jobs)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(mine))
    assert "scan" not in spy.calls

    only_a = store.list_jobs("alice", pipeline_name="a", limit=100)
    assert len(only_a.jobs) == 12 and {j.pipeline_name for j in only_a.jobs} == {"a"}
    claim = run_jobs.claim(mine[0], lease_seconds=60, max_attempts=3)
    assert claim.job is not None
    running = store.list_jobs("alice", status=JobStatus.RUNNING)
    assert [j.id for j in running.jobs] == [mine[0]]
    pending_b = store.list_jobs("alice", status=JobStatus.PENDING, pipeline_name="b", limit=5)
    assert len(pending_b.jobs) == 5 and pending_b.next_cursor is not None
    assert all(j.pipeline_name == "b" and j.status is JobStatus.PENDING for j in pending_b.jobs)
    rest = store.list_jobs(
        "alice",
        status=JobStatus.PENDING,
        pipeline_name="b",
        limit=100,
        cursor=pending_b.next_cursor,
    )
    assert len(rest.jobs) == 12 - 5  # mine[0] is pipeline b and running
    assert store.list_jobs("bob").jobs[0].user_id == "bob"
    with pytest.raises(InvalidCursor):
        store.list_jobs("bob", cursor=page.next_cursor or pending_b.next_cursor)


def test_items_stay_far_below_the_dynamodb_limit(
    aws: Aws, store: ApiJobs, run_jobs: RunJobs
) -> None:
    job = _job(store, blob="x" * 65_000)
    claim = run_jobs.claim(job.id, lease_seconds=60, max_attempts=3)
    assert claim.job is not None
    run_jobs.finish(claim.job, JobStatus.COMPLETED, results={"r": "y" * 32_000})
    item = aws.dynamodb.get_item(TableName=aws.resources.table_name, Key={"id": {"S": job.id}})
    size = sum(len(k) + len(str(v)) for k, v in item["Item"].items())
    assert size < 150_000


def test_a_listing_shows_each_jobs_current_record(store: ApiJobs, run_jobs: RunJobs) -> None:
    # The indexes hold keys only: a listing reads its page's jobs by key, so what it shows
    # is the job as it is now, results and progress included.
    job = _job(store, user="dana")
    claim = run_jobs.claim(job.id, lease_seconds=60, max_attempts=3)
    assert claim.job is not None
    assert run_jobs.report_progress(claim.job, Progress(total_nodes=2, completed_nodes=1)) is False
    [listed] = store.list_jobs("dana").jobs
    assert listed.status is JobStatus.RUNNING and listed.progress is not None
    assert listed.progress.completed_nodes == 1
    run_jobs.finish(claim.job, JobStatus.COMPLETED, results={"n": 7})
    [listed] = store.list_jobs("dana", status=JobStatus.COMPLETED).jobs
    assert listed == store.get(job.id) and listed.results == {"n": 7}
    [listed] = store.list_jobs("dana", pipeline_name="p", status=JobStatus.COMPLETED).jobs
    assert listed.results == {"n": 7}


def test_a_listing_reads_again_what_dynamodb_left_unread(
    store: ApiJobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = [_job(store, user="erin") for _ in range(3)]
    real = store.client.batch_get_item
    asked: list[int] = []

    def throttled_once(**kwargs: Any) -> dict[str, Any]:
        request = kwargs["RequestItems"][store.table_name]
        asked.append(len(request["Keys"]))
        if len(asked) > 1:
            return dict(real(**kwargs))
        # As DynamoDB does when throttled: part of the batch, the rest as UnprocessedKeys.
        resp = dict(real(RequestItems={store.table_name: {**request, "Keys": request["Keys"][:1]}}))
        resp["UnprocessedKeys"] = {store.table_name: {"Keys": request["Keys"][1:]}}
        return resp

    monkeypatch.setattr(store.client, "batch_get_item", throttled_once)
    listed = store.list_jobs("erin").jobs
    assert [j.id for j in listed] == [j.id for j in reversed(jobs)]  # newest first
    assert asked == [3, 2]
