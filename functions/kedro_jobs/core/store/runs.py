"""The writes of the run that claimed a job, all fenced: the attempt number the claim set is
the fencing token, so a run whose lease was taken over writes nothing (fencing.py)."""

from __future__ import annotations

import time
from typing import Any

from kedro_jobs.core.models import Job, Progress, Segment, utcnow
from kedro_jobs.core.requests import Compute
from kedro_jobs.core.states import TERMINAL, JobStatus

# Kept importable from here, where they were before fencing.py.
from kedro_jobs.core.store.fencing import NOT_CANCELLED as NOT_CANCELLED
from kedro_jobs.core.store.fencing import Abandoned as Abandoned
from kedro_jobs.core.store.fencing import Fence as Fence
from kedro_jobs.core.store.fencing import abandoned as abandoned
from kedro_jobs.core.store.items import status_change, sweep
from kedro_jobs.core.store.table import ConditionFailed, Table


def _given(timeline: dict[str, Any] | None) -> dict[str, Any]:
    """The timeline's fields that have a value (an item attribute cannot be set to None)."""
    return {name: value for name, value in (timeline or {}).items() if value is not None}


class Runs(Table):
    def heartbeat(self, job: Job, *, lease_seconds: float) -> bool | None:
        """The running consumer extends its lease. Returns whether a cancel was requested
        (the lease is extended all the same: the consumer is alive and stops at the next
        node), or None if this run no longer owns the job. One write, two if a cancel was
        asked."""
        lease_end = time.time() + lease_seconds
        extend = {"lease_expires_at": lease_end, "sweep_due": lease_end}
        fence = Fence(job)
        try:
            self._write(job.id, extend, fence.to(JobStatus.RUNNING) & NOT_CANCELLED)
        except ConditionFailed as failed:
            if not fence.held_by(failed.item):
                return None
            extended = self._update(job.id, extend, fence.to(JobStatus.RUNNING))
            return True if extended is not None else None
        return False

    def report_progress(
        self, job: Job, progress: Progress, timeline: dict[str, Any] | None = None
    ) -> bool | None:
        """Record progress: one write per node. Returns whether a cancel was requested, or
        None if this run no longer owns the job (its lease was taken over). Nothing comes
        back from a write that succeeds; a requested cancel fails it and the item says why.
        ``timeline``: the node timeline's fields (``nodes``, ``nodes_omitted``, ``eta``),
        written by the same write."""
        written = utcnow()
        values = {"progress": progress, "updated_at": written, **_given(timeline)}
        fence = Fence(job)
        try:
            self._write(job.id, values, fence.to(JobStatus.RUNNING) & NOT_CANCELLED)
        except ConditionFailed as failed:
            return True if fence.held_by(failed.item) else None
        self.events.progressed(job.model_copy(update=values))
        return False

    def finish(
        self,
        job: Job,
        status: JobStatus,
        *,
        results: dict[str, Any] | None = None,
        results_location: str | None = None,
        outputs: list[dict[str, Any]] | None = None,
        outputs_location: str | None = None,
        error_message: str | None = None,
        execution_time: float | None = None,
        progress: Progress | None = None,
        log_location: str | None = None,
        segments: list[Segment] | None = None,
        timeline: dict[str, Any] | None = None,
        kept: dict[str, Any] | None = None,
    ) -> Job | None:
        """running -> completed | failed | cancelled, by the run that owns the job.
        ``kept``: the checkpoint kept for a rerun from failure and until when (core/rerun.py)."""
        assert status in TERMINAL
        values = status_change(job.user_id, status)
        given = {
            "results": results,
            "results_location": results_location,
            "outputs": outputs,
            "outputs_location": outputs_location,
            "error_message": error_message,
            "progress": progress,
            "log_location": log_location,
            "segments": segments,
        }
        values.update({name: value for name, value in given.items() if value})
        values.update(_given(timeline))
        values.update(_given(kept))
        if execution_time is not None:
            values["execution_time"] = float(execution_time)
        try:
            # Nothing comes back (the results can be 32 KB): the record is what was written.
            # An ended job is not expected to end: its ETA goes.
            # Nothing kept: nothing is offered for a rerun (a rerun had the stopped job's).
            gone = ("eta",) if kept else ("eta", "reusable_until")
            self._write(job.id, values, Fence(job).to(status), remove=gone)
        except ConditionFailed:
            return None
        cleared = {name: None for name in gone}
        return self._changed(self._as_written(job.model_copy(update=cleared), values))

    def hand_off(
        self,
        job: Job,
        *,
        checkpoint: str | None,
        segments: list[Segment],
        progress: Progress,
        lease_seconds: float,
        compute: Compute | None = None,
        timeline: dict[str, Any] | None = None,
    ) -> Job | None:
        """The run that owns ``job`` saved a checkpoint and lets go: the job stays running,
        handed off, for the next segment to claim at once. Its lease is a grace period: if
        no segment claims it by then (the continuation message was lost), the sweeper sends
        it again. None if this run no longer owns the job."""
        lease_end = time.time() + lease_seconds
        values: dict[str, Any] = {
            "segments": segments,
            "progress": progress,
            "handed_off": True,
            "lease_expires_at": lease_end,
            "updated_at": utcnow(),
            **sweep(JobStatus.RUNNING, lease_end),
            **_given(timeline),
        }
        if checkpoint:
            values["checkpoint"] = checkpoint
        if compute:
            values["compute"] = compute
        try:
            self._write(job.id, values, Fence(job).to(JobStatus.RUNNING))
        except ConditionFailed:
            return None
        return self._changed(self._as_written(job, values))
