"""A job's run in segments: how long this one may take, what it records, and what earlier
runs of the pipeline teach about its nodes.

A job on Lambda runs in as many invocations as it needs: each segment stops at a node
boundary when the next node would not fit in what is left of the invocation, saves a
checkpoint, and hands the job to the next one (the runner decides where; the consumer records
and sends). Over all segments the job may take at most its ``max_job_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from kedro_jobs.core.artifacts import ArtifactStore
from kedro_jobs.core.errors import DependencyUnavailable
from kedro_jobs.core.models import Job, Segment, utcnow
from kedro_jobs.core.requests import Compute
from kedro_jobs.core.settings import Settings
from kedro_jobs.runner.types import RunOutcome

logger = Logger(service="kedro-jobs-consumer", child=True)


def discard_checkpoints(job: Job) -> None:
    """A job that ended between two segments (cancelled, failed, out of time) without a run
    to clean up after it: its checkpoints (user data) are deleted now. Only a location of
    the form the runner saves, ``.../.kedro-jobs/checkpoints/<this job's id>/<segment>``, is
    ever deleted. Best effort: what is left expires by the bucket's lifecycle rule."""
    location = job.checkpoint
    if not location or job.reusable_until is not None:
        return  # none, or kept for a rerun from failure: it expires by the lifecycle rule
    folder, _, segment = location.rstrip("/").rpartition("/")
    if not (segment.isdigit() and folder.endswith(f"/.kedro-jobs/checkpoints/{job.id}")):
        logger.warning("not a checkpoint of this job; left alone", extra={"location": location})
        return
    from kedro_jobs.runner.checkpoint import delete

    try:
        delete(folder)
    except Exception as exc:  # the job's end stands; the lifecycle rule removes it later
        logger.warning("checkpoints not deleted", extra={"reason": repr(exc)})
    else:
        logger.info("checkpoints deleted", extra={"location": folder})


def node_stats_key(pipeline_name: str) -> str:
    return f"stats/nodes/{pipeline_name}.json"


def job_limit_seconds(job: Job, settings: Settings) -> int:
    """The job's own limit, never above the deployment's."""
    return min(job.max_job_seconds or settings.max_job_seconds, settings.max_job_seconds)


def over_limit_message(limit: int, segments: int) -> str:
    return (
        f"Job exceeded its maximum run time of {limit} s (max_job_seconds) over "
        f"{segments} segment(s) and was stopped"
    )


@dataclass(frozen=True)
class Budget:
    """One segment's time, as time.monotonic() values."""

    deadline: float  # the run stops here (the earlier of the two below)
    invocation_deadline: float  # this invocation's (or task's) end, less the safety margin
    job_deadline: float  # where the job's max_job_seconds ends

    @property
    def may_continue(self) -> bool:
        """Another segment may go on where this one stops (only if the invocation, not the
        job's own limit, is what ends it)."""
        return self.invocation_deadline < self.job_deadline

    @property
    def over(self) -> bool:
        return self.job_deadline <= time.monotonic()

    @property
    def limit_binding(self) -> bool:
        return self.job_deadline <= self.invocation_deadline


def budget_for(job: Job, settings: Settings, seconds: float) -> Budget:
    """``seconds``: what is left of this invocation (or task)."""
    now, epoch = time.monotonic(), time.time()
    first_start = job.started_at.timestamp() if job.started_at else epoch
    job_deadline = now + first_start + job_limit_seconds(job, settings) - epoch
    invocation = now + seconds - settings.timeout_margin_seconds
    return Budget(min(invocation, job_deadline), invocation, job_deadline)


def new_segment(job: Job, compute: Compute, invocation: str | None) -> Segment:
    return Segment(
        segment=len(job.segments or []) + 1,
        compute=compute,
        invocation=invocation,
        started_at=utcnow(),
    )


def ended_segment(segment: Segment, ended: str, outcome: RunOutcome) -> Segment:
    checkpoint = outcome.checkpoint_seconds
    return segment.model_copy(
        update={
            "ended_at": utcnow(),
            "ended": ended,
            "nodes": list(outcome.node_durations),  # in the order they ran
            "checkpoint_seconds": round(checkpoint, 3) if checkpoint is not None else None,
        }
    )


# Node durations read from S3 are reused for this long by a container (other containers'
# updates reach it within this time): an estimate need not be fresh to the second.
NODE_STATS_TTL_SECONDS = 300.0
# A node's new duration is written only if it differs from the one known by more than
# this (seconds, or this fraction of it): the estimates decide whether a node fits in
# what is left of an invocation, where a difference under a second does not count.
NODE_STATS_TOLERANCE_SECONDS = 1.0
NODE_STATS_TOLERANCE_FRACTION = 0.25


def durations_changed(known: dict[str, float], new: dict[str, float]) -> bool:
    """True when some node is new, or took noticeably longer or shorter than known."""
    for node, seconds in new.items():
        before = known.get(node)
        if before is None:
            return True
        tolerance = max(NODE_STATS_TOLERANCE_SECONDS, NODE_STATS_TOLERANCE_FRACTION * before)
        if abs(seconds - before) > tolerance:
            return True
    return False


# A write that loses to other workers' this many times in a row is given up (logged): the
# durations are an estimate, and a job never waits or fails for them.
NODE_STATS_WRITE_ATTEMPTS = 4


def _durations(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    return {k: float(v) for k, v in value.items() if isinstance(v, int | float)}


class NodeStats:
    """Seconds each node of a pipeline took when it last ran (one small S3 object per
    pipeline). Best effort both ways.

    Workers that end at the same moment (a fanned-out job's groups) each merge their own
    nodes into the object and never drop each other's: a write is conditional on the version
    this container read (S3's If-Match, or If-None-Match where there was none); when another
    worker wrote first, the object is read again, merged again and written again, up to
    NODE_STATS_WRITE_ATTEMPTS times, then given up (logged).

    A container keeps what it read or wrote for NODE_STATS_TTL_SECONDS, and writes only
    durations that changed noticeably: a job whose nodes take as long as before makes no
    S3 request for them."""

    def __init__(
        self,
        artifacts: ArtifactStore,
        *,
        clock: Callable[[], float] = time.monotonic,
        ttl: float = NODE_STATS_TTL_SECONDS,
    ) -> None:
        self.artifacts = artifacts
        self._clock = clock
        self.ttl = ttl
        # pipeline: (read at, stats, the ETag of the version they came from)
        self._known: dict[str, tuple[float, dict[str, float], str | None]] = {}

    def read(self, pipeline_name: str) -> dict[str, float]:
        cached = self._known.get(pipeline_name)
        if cached is not None and self._clock() - cached[0] < self.ttl:
            return dict(cached[1])
        try:
            stored = self.artifacts.get_json_versioned(node_stats_key(pipeline_name))
        except (DependencyUnavailable, ValueError) as exc:
            logger.warning("node durations not read", extra={"reason": str(exc)})
            return {}
        read = _durations(stored.value)
        if read:
            # A pipeline nobody has timed yet is read again next time: another container may
            # be timing it now, and planning a segment blind can cut a node off mid-run.
            self._known[pipeline_name] = (self._clock(), read, stored.etag)
        return dict(read)

    def update(self, pipeline_name: str, known: dict[str, float], new: dict[str, float]) -> None:
        if not new or not durations_changed(known, new):
            return
        key = node_stats_key(pipeline_name)
        cached = self._known.get(pipeline_name)
        # First over the version this container holds (no extra request; a stale one only
        # costs a refused write), then over the one another worker wrote meanwhile.
        base, etag = (cached[1], cached[2]) if cached is not None else ({}, None)
        try:
            for attempt in range(NODE_STATS_WRITE_ATTEMPTS):
                if attempt:
                    stored = self.artifacts.get_json_versioned(key)
                    base, etag = _durations(stored.value), stored.etag
                    if not durations_changed(base, new):  # another worker wrote as much
                        self._known[pipeline_name] = (self._clock(), base, etag)
                        return
                merged = {**base, **new}
                written = self.artifacts.put_json_if(key, merged, etag=etag)
                if written is not None:
                    self._known[pipeline_name] = (self._clock(), merged, written)
                    return
        except (DependencyUnavailable, ValueError) as exc:
            logger.warning("node durations not recorded", extra={"reason": str(exc)})
            return
        logger.warning(
            "node durations not recorded: other workers kept writing them",
            extra={"attempts": NODE_STATS_WRITE_ATTEMPTS},
        )
