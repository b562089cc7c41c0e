"""When a job may be rerun from failure, and for how long (time injected), and what the
record keeps for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kedro_jobs.core.models import Job, Segment
from kedro_jobs.core.rerun import (
    REUSABLE_DAYS,
    NotReusable,
    check_reusable,
    kept_fields,
    rerun_fields,
    reusable_until,
    reused_job,
)
from kedro_jobs.core.states import JobStatus

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
KEPT = "s3://bucket/data/.kedro-jobs/checkpoints/j1/2"


def _job(status: JobStatus = JobStatus.FAILED, **fields: object) -> Job:
    job = Job.new(pipeline_name="p", parameters={}, options={}, user_id="u", job_id="j1")
    return job.model_copy(update={"status": status, **fields})


def _kept(**fields: object) -> Job:
    return _job(checkpoint=KEPT, reusable_until=reusable_until(NOW), **fields)


def _refusal(job: Job, now: datetime = NOW, exists: bool = True) -> str:
    with pytest.raises(NotReusable) as refused:
        rerun_fields(job, now, lambda _: exists)
    return str(refused.value)


def test_a_kept_checkpoint_is_offered_for_seven_days_less_an_hour() -> None:
    job = _kept(status=JobStatus.CANCELLED)
    assert REUSABLE_DAYS == 7
    assert check_reusable(job, NOW + timedelta(days=6, hours=22), lambda _: True) == KEPT
    assert "expired at 2026-12-14T05:00:00+00:00 (kept 7 days)" in _refusal(
        job, NOW + timedelta(days=6, hours=23)
    )


def test_the_refusals_say_why_and_what_to_do() -> None:
    plainly = "retry it without from_failure to run every node again"
    for job, why in [
        (_kept(status=JobStatus.COMPLETED), "it completed, so no node is left to run"),
        (_job(), "it kept no data to go on from"),
        (_job(checkpoint=KEPT), "it kept no data to go on from"),  # a job from before reruns
        (_kept(fan_out={"groups": []}), "it ran fanned out and no group of it completed"),
    ]:
        text = _refusal(job)
        assert text.startswith(f"Job 'j1' is {job.status}; it cannot be rerun from failure: ")
        assert why in text and text.endswith(plainly)
    assert f"the data it kept is gone from {KEPT}" in _refusal(_kept(), exists=False)


def test_a_job_still_running_is_not_rerun() -> None:
    with pytest.raises(Exception, match="is running; it cannot be retried until it has finished"):
        check_reusable(_kept(status=JobStatus.RUNNING), NOW, lambda _: True)


def test_a_checkpoint_saved_as_the_run_stopped_counts_from_now() -> None:
    job = _job()
    assert kept_fields(job, None, NOW) is None
    assert kept_fields(job, KEPT, NOW) == {
        "checkpoint": KEPT,
        "reusable_until": reusable_until(NOW),
    }


def test_the_checkpoint_a_run_went_on_from_counts_from_the_segment_that_saved_it() -> None:
    saved = NOW - timedelta(hours=5)
    job = _job(
        checkpoint=KEPT,
        segments=[Segment(segment=1, started_at=saved, ended_at=saved, ended="continued")],
    )
    assert kept_fields(job, KEPT, NOW) == {
        "checkpoint": KEPT,
        "reusable_until": saved + timedelta(days=7, hours=-1),
    }


def test_a_rerun_reuses_the_nodes_of_the_job_whose_checkpoint_it_goes_on_from() -> None:
    own = _kept()
    assert reused_job(own, KEPT) == "j1"
    # A rerun (of j0) that failed again before a node completed kept j0's checkpoint.
    again = _job(reused_from="j0", checkpoint="s3://b/data/.kedro-jobs/checkpoints/j0/1")
    assert reused_job(again, "s3://b/data/.kedro-jobs/checkpoints/j0/1") == "j0"
    # A rerun that completed nodes of its own before failing kept its own.
    assert reused_job(again, "s3://b/data/.kedro-jobs/checkpoints/j1/1") == "j1"


def test_a_rerun_that_fails_again_before_a_node_completes_is_offered_as_long_as_its_source() -> (
    None
):
    until = reusable_until(NOW - timedelta(days=3))
    rerun = _job(reused_from="j0", checkpoint=KEPT, reusable_until=until)
    assert kept_fields(rerun, KEPT, NOW) == {"checkpoint": KEPT, "reusable_until": until}
