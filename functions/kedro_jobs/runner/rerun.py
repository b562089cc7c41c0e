"""Rerun from failure, in the runner: whose checkpoint a run goes on from (its own, or the
stopped job's a rerun reuses), and which checkpoint a failed, cancelled or timed-out run
keeps for a rerun (runner.py deletes the others)."""

from __future__ import annotations

from kedro_jobs.runner.checkpoint import job_checkpoints, saved
from kedro_jobs.runner.control import RunControl
from kedro_jobs.runner.types import RunRequest


def checkpoint_owner(request: RunRequest, root: str) -> str:
    """Whose checkpoint ``request.checkpoint`` is: this job's, or (a rerun from failure's
    first segment) the failed job's it reuses."""
    reused = request.reuse_from
    location = (request.checkpoint or "").rstrip("/")
    if reused and location.startswith(job_checkpoints(root, reused) + "/"):
        return reused
    return request.job_id


def rerun_error(request: RunRequest, owner: str, error: str) -> str:
    if owner == request.job_id:
        return error
    return (
        f"Rerun from failure of job {owner}: the data it kept is gone or unusable ({error}). "
        "Retry it without from_failure to run every node again"
    )


def kept_checkpoint(
    request: RunRequest, control: RunControl, root: str, location: str
) -> str | None:
    """The checkpoint a failed, cancelled or timed-out run keeps: the one it saved as it
    stopped (the hook saves one when a node of this run completed), else the one it went on
    from (a node of the last segment ran, or was cut off, before any completed): this job's
    own, or the stopped job's a rerun from failure went on from (never deleted here). Not
    one the run could not restore: a run that failed before its pipeline started
    (``progress.total`` is still 0) read nothing it could trust."""
    if control.checkpoint_started is not None and location and saved(location):
        return location
    started = control.progress.total > 0
    if started and request.checkpoint and checkpoint_owner(request, root) == request.job_id:
        own = job_checkpoints(root, request.job_id) + "/"
        return request.checkpoint if request.checkpoint.startswith(own) else None
    if started and request.checkpoint:  # a rerun that failed again before a node completed
        return request.checkpoint  # the stopped job's, which it went on from
    return None
