"""Rerun from failure: a new job with the request of a failed, cancelled or timed-out job that
runs only the nodes that did not complete (and what depends on them), taking the completed
nodes' outputs from what the stopped job kept.

The stopped job's runner saves a checkpoint at its last good node boundary (the one a long
job's continuation uses: runner/checkpoint.py) and keeps it, for ``REUSABLE_DAYS``: the
bucket's lifecycle rule (template.yaml, ``expire-checkpoints``) deletes checkpoints that old,
and the record's ``reusable_until`` says when, with a margin, so a rerun is never offered on
data S3 may already have removed. The rules and the texts of the refusals live here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from kedro_jobs.core.errors import InvalidTransition
from kedro_jobs.core.models import Job
from kedro_jobs.core.states import JobStatus

# What S3 keeps a checkpoint for (template.yaml's expire-checkpoints rule, in days).
REUSABLE_DAYS = 7
# S3 expires an object at the midnight (UTC) after its age reaches the rule's days: at least
# that long. The files of a checkpoint are written a little before its manifest, and the time
# recorded is the consumer's: an hour less is never past S3's.
_MARGIN = timedelta(hours=1)

MANIFEST = "manifest.json"  # written last: a checkpoint without one is not complete


class RetryRequest(BaseModel):
    """The body of ``POST /jobs/{id}/retry`` (optional: none is a plain retry)."""

    model_config = ConfigDict(extra="forbid")

    from_failure: StrictBool = Field(
        False,
        description="Run only the nodes that did not complete (and what depends on them), "
        "reusing what the completed nodes made; 409 if the job kept nothing to reuse",
    )


class NotReusable(InvalidTransition):
    """A rerun from failure of a job that kept nothing it could go on from (a 409)."""

    def __init__(self, job: Job, why: str) -> None:
        super().__init__(job.id, job.status, f"rerun from failure: {why}")


def reusable_until(saved_at: datetime) -> datetime:
    """Until when a checkpoint saved at ``saved_at`` is offered for a rerun from failure."""
    return saved_at + timedelta(days=REUSABLE_DAYS) - _MARGIN


def kept_fields(job: Job, kept: str | None, now: datetime) -> dict[str, object] | None:
    """The record's fields for the checkpoint a stopped run kept (None: nothing kept). One
    the run saved as it stopped is as old as now; the one it went on from, as old as the
    segment that saved it (the last one recorded), or, a rerun's that failed again before a
    node completed, the stopped job's it reused: offered as long as it was."""
    if not kept:
        return None
    if kept == job.checkpoint and job.reused_from and job.reusable_until and not job.segments:
        return {"checkpoint": kept, "reusable_until": job.reusable_until}
    saved_at = now
    if kept == job.checkpoint and job.segments and job.segments[-1].ended_at:
        saved_at = job.segments[-1].ended_at
    return {"checkpoint": kept, "reusable_until": reusable_until(saved_at)}


def check_reusable(job: Job, now: datetime, exists: Callable[[str], bool]) -> str:
    """The checkpoint a rerun from failure of ``job`` goes on from; NotReusable (409) saying
    why there is none."""
    retry_plainly = "retry it without from_failure to run every node again"
    if job.status is JobStatus.COMPLETED:
        raise NotReusable(job, f"it completed, so no node is left to run; {retry_plainly}")
    if not job.status.terminal:
        raise InvalidTransition(job.id, job.status, "retried until it has finished")
    if job.fan_out is not None:
        raise NotReusable(
            job,
            "it ran fanned out over several workers (fan_out), whose groups keep nothing to "
            f"go on from; {retry_plainly}",
        )
    if job.reusable_until is None or not job.checkpoint:
        raise NotReusable(
            job,
            "it kept no data to go on from (no node completed before it stopped, a node was "
            f"cut off with no checkpoint before it, or it ended before reruns existed); "
            f"{retry_plainly}",
        )
    if now >= job.reusable_until:
        raise NotReusable(
            job,
            f"the data it kept expired at {job.reusable_until.isoformat()} (kept "
            f"{REUSABLE_DAYS} days); {retry_plainly}",
        )
    if not exists(job.checkpoint):
        raise NotReusable(job, f"the data it kept is gone from {job.checkpoint}; {retry_plainly}")
    return job.checkpoint


def reused_job(job: Job, checkpoint: str) -> str:
    """Whose completed nodes a rerun of ``job`` reuses: ``job``'s, from a checkpoint of its
    own (``.../.kedro-jobs/checkpoints/<job id>/<segment>``), else (a rerun that failed again
    before a node completed kept the one it went on from) the job it reused in turn."""
    if f"/.kedro-jobs/checkpoints/{job.id}/" in f"{checkpoint.rstrip('/')}/":
        return job.id
    return job.reused_from or job.id
