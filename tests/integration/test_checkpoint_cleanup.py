"""A job's checkpoints (user data under the data root) are deleted whenever it ends, also when
it ends between two segments with no run to clean up after it: cancelled while it waited, it
is found finished by its continuation message, whose delivery deletes them. Only a location
of the runner's own form, for that job, is ever deleted."""

from __future__ import annotations

from kedro_jobs.core.models import Job, Progress, Segment, utcnow
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ApiJobs, ClaimOutcome, RunJobs
from tests.support.jobs import submitted

from .conftest import Aws, Invoke


def _keys(aws: Aws, prefix: str) -> list[str]:
    listed = aws.s3.list_objects_v2(Bucket=aws.resources.bucket, Prefix=prefix)
    return [obj["Key"] for obj in listed.get("Contents", [])]


def _handed_off(store: ApiJobs, aws: Aws, checkpoint_key: str = "") -> tuple[Job, str]:
    """A job whose first segment saved a checkpoint at ``checkpoint_key`` (default: where the
    runner saves one) and let go."""
    run_jobs = RunJobs.over(store)
    job, _ = submitted(store, "steps", x=1)
    checkpoint_key = checkpoint_key or f"data/.kedro-jobs/checkpoints/{job.id}/1"
    claim = run_jobs.claim(job.id, lease_seconds=60, max_attempts=3, user_id="u")
    assert claim.outcome is ClaimOutcome.CLAIMED and claim.job is not None
    for name in ("manifest.json", "memory/0.pkl"):
        aws.s3.put_object(Bucket=aws.resources.bucket, Key=f"{checkpoint_key}/{name}", Body=b"x")
    handed = run_jobs.hand_off(
        claim.job,
        checkpoint=f"s3://{aws.resources.bucket}/{checkpoint_key}",
        segments=[Segment(segment=1, nodes=["step1"], started_at=utcnow(), ended="continued")],
        progress=Progress(total_nodes=3, completed_nodes=1),
        lease_seconds=60,
    )
    assert handed is not None
    return handed, handed.to_message().model_dump_json(exclude_none=True)


def test_a_job_cancelled_between_segments_loses_its_checkpoints(
    invoke: Invoke, store: ApiJobs, aws: Aws
) -> None:
    job, continuation = _handed_off(store, aws)
    job_id = job.id
    folder = f"data/.kedro-jobs/checkpoints/{job_id}/"
    # Another job's checkpoint, next to it, stays.
    aws.s3.put_object(
        Bucket=aws.resources.bucket, Key="data/.kedro-jobs/checkpoints/other/1/m", Body=b"x"
    )
    assert len(_keys(aws, folder)) == 2

    assert store.request_cancel(job_id, "u").status is JobStatus.CANCELLED
    assert invoke(continuation) == {"batchItemFailures": []}

    final = store.get(job_id)
    assert final is not None and final.status is JobStatus.CANCELLED
    assert _keys(aws, folder) == []
    assert _keys(aws, "data/.kedro-jobs/checkpoints/other/") != []


def test_a_location_not_of_the_jobs_checkpoint_form_is_never_deleted(
    invoke: Invoke, store: ApiJobs, aws: Aws
) -> None:
    job, continuation = _handed_off(store, aws, "data/data/03_primary")

    assert store.request_cancel(job.id, "u").status is JobStatus.CANCELLED
    assert invoke(continuation) == {"batchItemFailures": []}

    assert len(_keys(aws, "data/data/03_primary/")) == 2
