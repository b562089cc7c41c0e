"""A job longer than one invocation, through the consumer's Lambda handler (real SQS events,
a real Kedro project, moto): it stops at a node boundary, hands off, and the continuation
message it sends runs the rest, with the same result as one uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest

from kedro_jobs.core.artifacts import ArtifactStore
from kedro_jobs.core.models import Job
from kedro_jobs.core.settings import get_settings
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ApiJobs
from kedro_jobs_local.counting_project import executions
from tests.support.jobs import submitted

from .conftest import Aws, Invoke

STEP_SECONDS = 3.0


@pytest.fixture(autouse=True)
def _record_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nodes record the value they got: which job's node ran is counted."""
    monkeypatch.setenv("KEDRO_JOBS_TEST_RECORD_VALUES", "1")


def _submitted(store: ApiJobs, x: int) -> tuple[Job, str]:
    return submitted(store, "steps", x=x, seconds=STEP_SECONDS)


def _short_invocation() -> float:
    """An invocation with room for one step and not two."""
    return get_settings().timeout_margin_seconds + STEP_SECONDS * 1.8


def _checkpoint_keys(aws: Aws, job: Job) -> list[str]:
    prefix = f"data/.kedro-jobs/checkpoints/{job.id}/"
    listed = aws.s3.list_objects_v2(Bucket=aws.resources.bucket, Prefix=prefix)
    return [obj["Key"] for obj in listed.get("Contents", [])]


def _run_segments(invoke: Invoke, aws: Aws, body: str, *, limit: int = 6) -> int:
    """Invoke with ``body``, then with each continuation message it sends; the count."""
    for count in range(1, limit + 1):
        assert invoke(body, timeout=_short_invocation()) == {"batchItemFailures": []}
        messages = aws.messages()
        if not messages:
            return count
        [message] = messages
        body = message["Body"]
        aws.sqs.delete_message(
            QueueUrl=aws.resources.queue_url, ReceiptHandle=message["ReceiptHandle"]
        )
    raise AssertionError(f"still continuing after {limit} segments")


def test_a_job_longer_than_an_invocation_completes_in_segments(
    invoke: Invoke, store: ApiJobs, aws: Aws, record: Path
) -> None:
    whole, whole_body = _submitted(store, 1)
    assert invoke(whole_body, timeout=60) == {"batchItemFailures": []}
    uninterrupted = store.get(whole.id)
    assert uninterrupted is not None and uninterrupted.status is JobStatus.COMPLETED
    assert len(uninterrupted.segments or []) == 1

    job, body = _submitted(store, 1)
    invocations = _run_segments(invoke, aws, body)
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED, done
    assert invocations >= 2
    segments = done.segments or []
    assert len(segments) == invocations
    assert [s.segment for s in segments] == list(range(1, invocations + 1))
    assert [s.ended for s in segments] == ["continued"] * (invocations - 1) + ["completed"]
    assert [n for s in segments for n in s.nodes] == ["step1", "step2", "step3"]
    assert all(s.compute == "lambda" and s.invocation for s in segments)
    # Each saved or loaded a checkpoint, and says what that took.
    assert all(s.checkpoint_seconds is not None for s in segments)
    assert uninterrupted.segments and uninterrupted.segments[0].checkpoint_seconds is None
    # The same result as one uninterrupted run, each node run once in each job.
    assert done.results == uninterrupted.results == {"three": 4}
    assert executions(record) == {"step 1": 2, "step 2": 2, "step 3": 2}
    assert done.progress is not None
    assert (done.progress.completed_nodes, done.progress.total_nodes) == (3, 3)
    assert done.continuations == invocations - 1 and done.attempts == invocations
    # One log, every segment's lines in order.
    log = ArtifactStore(aws.resources.bucket, s3=aws.s3).get_text(f"logs/{job.id}.log") or ""
    assert log.index("step1") < log.index("step2") < log.index("step3")


def test_a_cancel_between_segments_ends_the_job_and_runs_nothing_more(
    invoke: Invoke, store: ApiJobs, aws: Aws, record: Path
) -> None:
    job, body = _submitted(store, 5)
    assert invoke(body, timeout=_short_invocation()) == {"batchItemFailures": []}
    handed = store.get(job.id)
    assert handed is not None and handed.status is JobStatus.RUNNING and handed.handed_off
    assert handed.progress is not None and handed.progress.completed_nodes == 1
    assert _checkpoint_keys(aws, job)
    cancelled = store.request_cancel(job.id, "u")
    assert cancelled.status is JobStatus.CANCELLED
    [continuation] = aws.messages()
    assert invoke(continuation["Body"], timeout=60) == {"batchItemFailures": []}
    final = store.get(job.id)
    assert final is not None and final.status is JobStatus.CANCELLED
    assert executions(record) == {"step 5": 1}
    # Its checkpoint (user data) is gone with it.
    assert _checkpoint_keys(aws, job) == []


def test_a_job_over_its_own_time_limit_fails_between_segments(
    invoke: Invoke, store: ApiJobs, aws: Aws, record: Path
) -> None:
    job, body = _submitted(store, 7)
    assert invoke(body, timeout=_short_invocation()) == {"batchItemFailures": []}
    # Its limit is reached while it waits for the next segment.
    store.client.update_item(
        TableName=store.table_name,
        Key={"id": {"S": job.id}},
        UpdateExpression="SET max_job_seconds = :m, started_at = :s",
        ExpressionAttributeValues={
            ":m": {"N": "60"},
            ":s": {"S": "2026-01-01T00:00:00.000000Z"},
        },
    )
    [continuation] = aws.messages()
    assert invoke(continuation["Body"], timeout=60) == {"batchItemFailures": []}
    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert "maximum run time of 60 s (max_job_seconds)" in (failed.error_message or "")
    assert executions(record) == {"step 7": 1}
    assert _checkpoint_keys(aws, job) == []
