"""Rerun from failure: a new job with the request of a failed, cancelled or timed-out job that
runs only the nodes that did not complete (and what depends on them), taking the completed
nodes' outputs from what the stopped job kept.

The stopped job's runner saves a checkpoint at its last good node boundary (the one a long
job's continuation uses: runner/checkpoint.py) and keeps it, for ``REUSABLE_DAYS``: the
bucket's lifecycle rule (template.yaml, ``expire-checkpoints``) deletes checkpoints that old,
and the record's ``reusable_until`` says when, with a margin, so a rerun is never offered on
data S3 may already have removed. The rules and the texts of the refusals live here.

A fanned-out job (docs/fan-out.md) keeps instead the hand-overs of its groups that completed
(under ``<data root>/.kedro-jobs/groups/<job id>/``, the record's ``checkpoint``), for as long
(template.yaml's ``expire-group-handovers``); its rerun fans out with the same plan, each
such group ``reused`` (its hand-over read from where it was kept), the others run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from kedro_jobs.core.errors import InvalidTransition
from kedro_jobs.core.models import GroupRun, Job
from kedro_jobs.core.states import JobStatus

# What S3 keeps a checkpoint for (template.yaml's expire-checkpoints rule, in days).
REUSABLE_DAYS = 7
# S3 expires an object at the midnight (UTC) after its age reaches the rule's days: at least
# that long. The files of a checkpoint are written a little before its manifest, and the time
# recorded is the consumer's: an hour less is never past S3's.
_MARGIN = timedelta(hours=1)

MANIFEST = "manifest.json"  # written last: a checkpoint without one is not complete
HANDOVER = "handover.json"  # a group's hand-over's, written last as well (runner/handover.py)


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


def _stopped(job: Job) -> str:
    """What a 409 says besides why (the job must have stopped without completing)."""
    retry_plainly = "retry it without from_failure to run every node again"
    if job.status is JobStatus.COMPLETED:
        raise NotReusable(job, f"it completed, so no node is left to run; {retry_plainly}")
    if not job.status.terminal:
        raise InvalidTransition(job.id, job.status, "retried until it has finished")
    return retry_plainly


def _unexpired(job: Job, now: datetime, retry_plainly: str) -> None:
    assert job.reusable_until is not None
    if now >= job.reusable_until:
        raise NotReusable(
            job,
            f"the data it kept expired at {job.reusable_until.isoformat()} (kept "
            f"{REUSABLE_DAYS} days); {retry_plainly}",
        )


def check_reusable(job: Job, now: datetime, exists: Callable[[str], bool]) -> str:
    """The checkpoint a rerun from failure of one-worker ``job`` goes on from (``exists``:
    whether a file is there); NotReusable (409) saying why there is none."""
    retry_plainly = _stopped(job)
    if job.reusable_until is None or not job.checkpoint:
        raise NotReusable(
            job,
            "it kept no data to go on from (no node completed before it stopped, a node was "
            f"cut off with no checkpoint before it, or it ended before reruns existed); "
            f"{retry_plainly}",
        )
    _unexpired(job, now, retry_plainly)
    if not exists(f"{job.checkpoint.rstrip('/')}/{MANIFEST}"):
        raise NotReusable(job, f"the data it kept is gone from {job.checkpoint}; {retry_plainly}")
    return job.checkpoint


# -- a fanned-out job (docs/fan-out.md#rerun-from-failure) -------------------------------------


def kept_groups(job: Job) -> dict[str, str]:
    """The groups of fanned-out ``job`` whose hand-overs a rerun of it may reuse, each with
    the job whose hand-over it is: the groups it completed (its own), and those it reused in
    turn (a rerun's, still kept by the job it reused them from)."""
    plan = job.fan_out or {}
    reused = plan.get("reused") or {}
    kept: dict[str, str] = {}
    for group_id, group in (job.groups or {}).items():
        if group.status == "completed":
            kept[group_id] = job.id
        elif group.status == "reused" and isinstance(reused.get(group_id), str):
            kept[group_id] = reused[group_id]
    return kept


def handover_location(job: Job, group_id: str, owner: str) -> str:
    """Where group ``group_id``'s hand-over kept by job ``owner`` is: beside ``job``'s own
    (``job.checkpoint``: ``<data root>/.kedro-jobs/groups/<job id>``)."""
    assert job.checkpoint
    return f"{job.checkpoint.rstrip('/').rpartition('/')[0]}/{owner}/{group_id}"


def check_groups_reusable(job: Job, now: datetime, exists: Callable[[str], bool]) -> dict[str, str]:
    """The groups a rerun from failure of fanned-out ``job`` reuses (group id to the job whose
    hand-over it reads; ``exists``: whether a file is there); NotReusable (409) saying why
    there are none. A group whose hand-over is gone runs again."""
    retry_plainly = _stopped(job)
    kept = kept_groups(job)
    if job.reusable_until is None or not job.checkpoint or not kept:
        raise NotReusable(
            job,
            "it kept no data to go on from (it ran fanned out and no group of it completed "
            f"before it stopped, or it ended before such reruns existed); {retry_plainly}",
        )
    _unexpired(job, now, retry_plainly)
    found = {
        group_id: owner
        for group_id, owner in kept.items()
        if exists(f"{handover_location(job, group_id, owner)}/{HANDOVER}")
    }
    if not found:
        raise NotReusable(job, f"the data it kept is gone from {job.checkpoint}; {retry_plainly}")
    return found


def rerun_plan(job: Job, reused: dict[str, str]) -> dict[str, Any]:
    """The plan a rerun of fanned-out ``job`` fans out with: its groups and levels, the
    ``reused`` ones named (its save version is the rerun's own, set when it fans out)."""
    plan = {k: v for k, v in (job.fan_out or {}).items() if k not in {"save_version", "reused"}}
    ordered = dict(sorted(reused.items(), key=lambda g: (len(g[0]), g[0])))
    # ``kept_at``: where the stopped job kept its hand-overs (the others' are beside them).
    return {**plan, "reused": ordered, "kept_at": job.checkpoint}


def _never_fanned_out(job: Job) -> Job:
    """A fanned-out job's rerun that ended before it fanned out (cancelled while pending) kept
    what it was to reuse: as a job whose groups were all reused."""
    plan = job.reuse_plan or {}
    reused = plan.get("reused") or {}
    groups = {group_id: GroupRun(status="reused") for group_id in reused}
    return job.model_copy(
        update={"fan_out": plan, "groups": groups, "checkpoint": plan.get("kept_at")}
    )


def kept_groups_fields(job: Job, location: str, now: datetime) -> dict[str, object] | None:
    """The record's fields for what a stopped fanned-out job kept (None: nothing): its
    hand-overs' folder, offered until its own expire, or (those it reused in turn) until the
    job it reused them from kept them."""
    kept = kept_groups(job)
    if not kept:
        return None
    until = [reusable_until(now)] if job.id in kept.values() else []
    if any(owner != job.id for owner in kept.values()) and job.reusable_until is not None:
        until.append(job.reusable_until)
    if not until:
        return None
    return {"checkpoint": location, "reusable_until": min(until)}


def reused_job(job: Job, checkpoint: str) -> str:
    """Whose completed nodes a rerun of ``job`` reuses: ``job``'s, from a checkpoint of its
    own (``.../.kedro-jobs/checkpoints/<job id>/<segment>``), else (a rerun that failed again
    before a node completed kept the one it went on from) the job it reused in turn."""
    if f"/.kedro-jobs/checkpoints/{job.id}/" in f"{checkpoint.rstrip('/')}/":
        return job.id
    return job.reused_from or job.id


def rerun_fields(job: Job, now: datetime, exists: Callable[[str], bool]) -> dict[str, Any]:
    """What a rerun from failure of ``job`` starts with (``exists``: whether a file is there,
    on S3 or a local data root); NotReusable (409) saying why it cannot be made. Offered as
    long as ``job``'s data: if the rerun fails again before it completes anything of its own,
    it keeps that (kept_fields, kept_groups_fields)."""
    if job.fan_out is None and job.reuse_plan is not None and not job.checkpoint:
        job = _never_fanned_out(job)
    if job.fan_out is not None:
        reused = check_groups_reusable(job, now, exists)
        owners = set(reused.values())
        return {
            "reused_from": job.id if job.id in owners else (job.reused_from or min(owners)),
            "reusable_until": job.reusable_until,
            "reuse_plan": rerun_plan(job, reused),
        }
    checkpoint = check_reusable(job, now, exists)
    return {
        "reused_from": reused_job(job, checkpoint),
        "checkpoint": checkpoint,
        "reusable_until": job.reusable_until,
    }
