"""One segment of a claimed job's run, and what becomes of the job after it.

The runner runs the job's nodes until they are done, the job is cancelled or taken over, or
the segment's time is up; its progress sink records progress and beats the heartbeat that
keeps the claim's lease, and learns of a cancel or a take-over. Then the job ends, goes on
in another segment (from the checkpoint the runner saved), or moves to a task backend such
as Fargate (a node did not fit in an invocation; core/compute/).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from aws_lambda_powertools import Logger

from kedro_jobs.consumer.claim import lease_seconds
from kedro_jobs.consumer.dispatch import Dispatcher
from kedro_jobs.consumer.outcome import Recorder
from kedro_jobs.consumer.project import ProjectLoadFailed, Runner
from kedro_jobs.consumer.rerun import kept, reused_timeline
from kedro_jobs.consumer.segments import (
    NodeStats,
    budget_for,
    discard_checkpoints,
    ended_segment,
    job_limit_seconds,
    new_segment,
    over_limit_message,
)
from kedro_jobs.core.compute import backend as compute_backend
from kedro_jobs.core.errors import DependencyUnavailable
from kedro_jobs.core.models import Job, Progress, Segment, utcnow
from kedro_jobs.core.queue import JobQueue, encode
from kedro_jobs.core.requests import Compute
from kedro_jobs.core.settings import Settings
from kedro_jobs.core.store.roles.run import RunJobs
from kedro_jobs.core.timeline import Timeline, expected_end
from kedro_jobs.runner.ending import Verdict, verdict
from kedro_jobs.runner.types import RunOutcome, RunRequest

logger = Logger(service="kedro-jobs-consumer", child=True)


@dataclass(frozen=True)
class _HandOff:
    what: str  # in the warning when its message was not sent
    said: str  # logged once it is handed off


_HAND_OFFS = {
    # The segment stopped at a node boundary: the next one goes on from its checkpoint.
    "continue": _HandOff("continuation", "job continues in another segment"),
    # The host is stopping and the segment's node could not finish in time: handed off at
    # once, rather than wait for its lease to expire.
    "hand_back": _HandOff("hand-back", "the host is stopping: the job was handed back"),
    # A node did not fit in an invocation: the job goes on as a task of the backend that
    # takes long nodes (the dispatcher's long_nodes: Fargate).
    "move": _HandOff("move to a task", "a node outlived the invocation: the job goes on as a task"),
}


class JobSink:
    """The run's progress sink, with the heartbeat the runner's RunControl calls. Both tell
    the run to stop when a cancel was asked; ``lost`` is set when this run no longer owns
    the job (another delivery took it over)."""

    def __init__(
        self, store: RunJobs, job: Job, lease: float, timeline: Timeline | None = None
    ) -> None:
        self.store = store
        self.job = job
        self.lease = lease
        self.lost = False
        self._next_beat = time.monotonic() + lease / 3
        # When a write last read the job's cancel flag: the claim, just made; then each
        # progress write and heartbeat (runner/control.py holds reports back only soon after).
        self.read_at = time.monotonic()
        # The node timeline this segment adds to, written with each progress report; with
        # ``estimates`` (the pipeline's past node durations) it also gives the job's ETA.
        self.timeline = timeline
        self.estimates: dict[str, float] = {}
        self._resumed = False

    def node_finished(self, name: str, seconds: float) -> None:
        if self.timeline is not None:
            self.timeline.finished(name, seconds, utcnow())

    def timeline_fields(self, total: int) -> dict[str, Any] | None:
        """The record's timeline fields as they stand (None: no timeline kept)."""
        if self.timeline is None:
            return None
        nodes = self.timeline.nodes()
        return {
            "nodes": nodes,
            "nodes_omitted": self.timeline.omitted or None,
            "eta": expected_end(nodes, total, self.estimates, utcnow()),
        }

    def ended(self, status: str) -> dict[str, Any] | None:
        """The timeline's fields once the segment has ended with the run's ``status``."""
        if self.timeline is None:
            return None
        self.timeline.ended(status, utcnow())
        return {"nodes": self.timeline.nodes(), "nodes_omitted": self.timeline.omitted or None}

    def heartbeat(self) -> bool:
        """True while the run goes on (beaten at most every third of the lease)."""
        now = time.monotonic()
        if now < self._next_beat:
            return True
        self._next_beat = now + self.lease / 3
        # If it is not recorded, the next beat tries again; a lease lost meanwhile is fenced
        # by the attempt.
        beat = partial(self.store.heartbeat, self.job, lease_seconds=self.lease)
        return not self._stop(beat, "heartbeat not recorded")

    def __call__(self, completed: int, total: int, current: str | None, /) -> bool:
        """True when the run should stop."""
        if total and completed >= total:
            return False  # the final write records it; nothing is left to cancel
        progress = Progress(total_nodes=total, completed_nodes=completed, current_node=current)
        self._track(completed, current)
        # Progress is best effort: if it is not recorded the run goes on, and the final
        # write retries.
        write = partial(self.store.report_progress, self.job, progress, self.timeline_fields(total))
        return self._stop(write, "progress not recorded")

    def held(self, completed: int, total: int, current: str | None, /) -> None:
        """Where the run is, told without a write (a report the runner held back: see
        runner/control.py): the timeline keeps it for the next write, or the final one."""
        self._track(completed, current)

    def _track(self, completed: int, current: str | None) -> None:
        if self.timeline is not None:
            if not self._resumed:  # the first report says how many nodes ran before
                self.timeline.resume(completed)
                self._resumed = True
            self.timeline.began(current, utcnow())

    def _stop(self, write: Callable[[], bool | None], unrecorded: str) -> bool:
        """One write to the job that tells whether the run should stop: a cancel was asked,
        or the job changed hands (None). A write that fails does not stop the run."""
        sent = time.monotonic()
        try:
            cancel = write()
        except DependencyUnavailable as exc:
            logger.warning(unrecorded, extra={"reason": exc.reason})
            return False
        self.read_at = sent
        if cancel is None:
            self.lost = True
            return True
        return cancel


class SegmentRun:
    def __init__(
        self,
        settings: Settings,
        *,
        store: RunJobs,
        queue: JobQueue,
        recorder: Recorder,
        node_stats: NodeStats,
        dispatcher: Dispatcher,
        runner: Callable[[], Runner],
    ) -> None:
        self.settings = settings
        self.store = store
        self.queue = queue
        self.recorder = recorder
        self.node_stats = node_stats
        self.dispatcher = dispatcher
        self._runner = runner  # loads the project on the first job (ProjectLoadFailed)

    def run(
        self,
        job: Job,
        seconds: float,
        *,
        invocation: str | None,
        compute: Compute = "lambda",
    ) -> Job | None:
        """One segment of the claimed job, with ``seconds`` left of this invocation (or
        task). Returns the record as it was written, or None if the job changed hands."""
        budget = budget_for(job, self.settings, seconds)
        segment = new_segment(job, compute, invocation)
        if budget.over:  # the segments before used up its max_job_seconds
            message = over_limit_message(job_limit_seconds(job, self.settings), segment.segment - 1)
            return self._end(job, segment, RunOutcome("failed", None, message, "", 0.0))
        earlier, omitted = reused_timeline(job)  # a rerun from failure's reused nodes
        timeline = Timeline(earlier, segment=segment.segment, compute=compute, omitted=omitted)
        sink = JobSink(self.store, job, lease_seconds(self.settings, seconds), timeline)
        logger.info(
            "job started",
            extra={
                "pipeline": job.pipeline_name,
                "attempt": job.attempts,
                "segment": segment.segment,
                "compute": compute,
            },
        )
        try:
            runner = self._runner()
        except ProjectLoadFailed as failed:
            return self._end(job, segment, RunOutcome("failed", None, str(failed), "", 0.0))
        estimates = self.node_stats.read(job.pipeline_name)
        sink.estimates = estimates
        # A node that outlives this invocation moves the job to a task backend that takes
        # long nodes (Fargate), where one is offered.
        long_nodes = self.dispatcher.long_nodes
        may_move = (
            compute_backend(compute).in_consumer and budget.may_continue and long_nodes is not None
        )
        outcome = runner.run(
            RunRequest(
                job_id=job.id,
                pipeline_name=job.pipeline_name,
                parameters=job.parameters,
                options=job.options,
                checkpoint=job.checkpoint,
                may_continue=budget.may_continue,
                node_estimates=estimates,
                segment=segment.segment,
                continue_margin_seconds=self.settings.continue_margin_seconds,
                keep_checkpoint_on_timeout=may_move,
                reuse_from=job.reused_from,
            ),
            sink,
            deadline=budget.deadline,
        )
        if sink.lost:
            logger.warning("job was taken over by another delivery; its outcome is not recorded")
            return None
        self.node_stats.update(job.pipeline_name, estimates, outcome.node_durations)
        ended_timeline = sink.ended(outcome.status)
        over_limit = None
        if budget.limit_binding:
            limit = job_limit_seconds(job, self.settings)
            over_limit = over_limit_message(limit, segment.segment)
        ending = verdict(outcome, may_move=may_move, over_limit=over_limit)
        if ending.next == "end":
            return self._end(job, segment, outcome, ended_timeline, ending)
        return self._hand_off(job, segment, outcome, ending, ended_timeline)

    def _hand_off(
        self,
        job: Job,
        segment: Segment,
        outcome: RunOutcome,
        ending: Verdict,
        timeline: dict[str, Any] | None,
    ) -> Job | None:
        """The segment stopped and the job goes on (``ending.next``): it stays running, handed
        off to the next segment, and its message is sent. If the send fails the job waits,
        handed off, until the sweeper sends it (after its grace lease)."""
        hand_off = _HAND_OFFS[ending.next]
        done = ended_segment(segment, ending.segment, outcome)
        handed = self.recorder.hand_off(
            job,
            outcome,
            [*(job.segments or []), done],
            # A continuation goes on from the checkpoint this segment saved; a hand-back or
            # a move from the one this segment went on from (or from the first node).
            checkpoint=outcome.checkpoint if ending.next == "continue" else job.checkpoint,
            compute=self._long_nodes_backend() if ending.next == "move" else None,
            timeline=timeline,
        )
        if handed is None:
            return None
        try:
            self.queue.send(encode(handed.to_message()))
        except DependencyUnavailable as exc:
            logger.warning(
                f"{hand_off.what} not sent; the sweeper will", extra={"reason": exc.reason}
            )
        logger.info(hand_off.said, extra={"segment": segment.segment + 1})
        return handed

    def _long_nodes_backend(self) -> Compute:
        long_nodes = self.dispatcher.long_nodes
        assert long_nodes is not None  # verdict moves a job only when may_move
        return long_nodes.name

    def _end(
        self,
        job: Job,
        segment: Segment,
        outcome: RunOutcome,
        timeline: dict[str, Any] | None = None,
        ending: Verdict | None = None,
    ) -> Job | None:
        ending = ending or verdict(outcome)
        done = ended_segment(segment, ending.segment, outcome)
        segments = [*(job.segments or []), done]
        elapsed = sum((s.ended_at - s.started_at).total_seconds() for s in segments if s.ended_at)
        finished = self.recorder.finish(
            job,
            outcome,
            segments,
            execution_time=elapsed if len(segments) > 1 else None,
            timeline=timeline,
            kept=kept(job, outcome),
            ending=ending,
        )
        if finished is not None and not outcome.kept:
            # The runner deletes them when it ran; not when the job ended before it (out of
            # time, the project failed to load). One kept for a rerun from failure stays.
            discard_checkpoints(job)
        return finished
