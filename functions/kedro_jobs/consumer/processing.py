"""One SQS record to one job run: parse, claim, run, record. The handler is a thin shell
around :class:`Consumer`.

Exactly once: a job runs only after a conditional pending->running claim; a duplicate
delivery finds it running under a live lease (or finished) and does nothing. The claim is a
short lease that the run's heartbeat extends; if the consumer dies, the sweeper sends the
job again once the lease has expired, and the attempt number fences the old run's writes.

Retry or not, decided once (``retry_delay``): errors in the user's pipeline fail the job and
are not retried; a message that can never succeed goes to the dead-letter queue at once;
infrastructure errors (throttling, 5xx, timeouts) and a lack of time are reported to SQS
with the record made visible again after a short backoff by its receive count.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from aws_lambda_powertools import Logger, Metrics

from kedro_jobs.consumer.context import remaining_seconds
from kedro_jobs.consumer.dispatch import Dispatcher
from kedro_jobs.consumer.messages import BadMessage, parse_body
from kedro_jobs.consumer.outcome import Recorder
from kedro_jobs.consumer.segments import (
    NodeStats,
    budget_for,
    ended_segment,
    job_limit_seconds,
    new_segment,
    over_limit_message,
)
from kedro_jobs.core.artifacts import ArtifactStore
from kedro_jobs.core.compute import TaskLauncher
from kedro_jobs.core.errors import DependencyUnavailable
from kedro_jobs.core.manifest import Manifest, ManifestReader
from kedro_jobs.core.models import Compute, Job, JobMessage, Progress, Segment
from kedro_jobs.core.queue import JobQueue, encode
from kedro_jobs.core.settings import Settings
from kedro_jobs.core.store import Claim, ClaimOutcome, JobStore
from kedro_jobs.runner.types import ProgressSink, RunOutcome, RunRequest

logger = Logger(service="kedro-jobs-consumer", child=True)


class Runner(Protocol):
    def run(
        self, request: RunRequest, progress: ProgressSink, *, deadline: float
    ) -> RunOutcome: ...

    def manifest(self) -> dict[str, Any]: ...


class PoisonMessage(Exception):
    """A record that names no job and cannot be read: reported failed, so it reaches the DLQ."""


class ProjectLoadFailed(Exception):
    """The Kedro project could not be loaded in this container: every job fails with why."""


def project_load_message(exc: BaseException) -> str:
    return f"The Kedro project could not be loaded: {type(exc).__name__}: {exc}"


class OutOfTime(Exception):
    """Too little of the invocation is left to start this record: SQS delivers it again."""


# Failures that a later delivery may not meet: the record comes back after a short backoff.
RETRYABLE: tuple[type[Exception], ...] = (DependencyUnavailable, OutOfTime)
RETRY_FIRST_SECONDS = 5
RETRY_MAX_SECONDS = 60


def retry_delay(exc: BaseException, receive_count: int) -> int | None:
    """Seconds until a failed record is delivered again, or None to leave it to the queue's
    own visibility timeout (an unexpected error: six times the function's timeout). Doubles
    with each receive up to RETRY_MAX_SECONDS, with jitter so a burst of throttled records
    does not come back at one instant."""
    if not isinstance(exc, RETRYABLE):
        return None
    ceiling = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (max(1, receive_count) - 1))
    # Jitter, not security: the standard generator is right.
    return max(1, round(random.uniform(ceiling / 2, ceiling)))  # noqa: S311  # nosec B311


@dataclass
class _Ownership:
    """What the run's progress sink learnt: whether this run still owns the job."""

    lost: bool = False


class Consumer:
    def __init__(
        self,
        settings: Settings,
        *,
        store: JobStore,
        artifacts: ArtifactStore,
        runner_factory: Callable[[], Runner],
        metrics: Metrics | None = None,
        queue: JobQueue | None = None,
        dead_letters: JobQueue | None = None,
        launcher: TaskLauncher | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.queue = queue or JobQueue(settings.jobs_queue_url)
        self.dead_letters = dead_letters or (
            JobQueue(settings.jobs_dlq_url) if settings.jobs_dlq_url else None
        )
        self.artifacts = artifacts
        self._runner_factory = runner_factory
        self._runner: Runner | None = None
        self.load_error: str | None = None  # why the project could not be loaded, if it could not
        self.metrics = metrics
        self._manifest_published = False
        self.recorder = Recorder(settings, store, artifacts, metrics)
        self.node_stats = NodeStats(artifacts)
        self.dispatcher = Dispatcher(store, launcher)

    @property
    def runner(self) -> Runner:
        """The Kedro project is bootstrapped once per container, on the first job. A project
        that cannot load (a missing package, a broken registry) raises ProjectLoadFailed
        from then on: loading it again would fail the same way."""
        if self._runner is None:
            if self.load_error is not None:
                raise ProjectLoadFailed(self.load_error)
            try:
                self._runner = self._runner_factory()
            except Exception as exc:
                self.load_error = project_load_message(exc)
                logger.exception("the Kedro project could not be loaded")
                raise ProjectLoadFailed(self.load_error) from exc
        return self._runner

    def publish_manifest(self) -> str:
        try:
            manifest = Manifest.model_validate(self.runner.manifest())
        except ProjectLoadFailed as failed:  # the API then says why no pipeline is listed
            manifest = Manifest(load_error=str(failed))
        return ManifestReader(self.artifacts).publish(manifest)

    def publish_manifest_once(self) -> None:
        """The pipeline manifest (what the API lists), once per container. The handler calls
        this after a batch, so that the first job does not wait for it (~0.1 s of a cold
        start)."""
        if self._manifest_published:
            return
        self._manifest_published = True
        try:
            location = self.publish_manifest()
            logger.info("pipeline manifest published", extra={"location": location})
        except DependencyUnavailable as exc:
            # The jobs can still run; the API keeps the last manifest it had.
            logger.warning("pipeline manifest not published", extra={"reason": exc.reason})

    # -- one record -------------------------------------------------------------------------

    def handle(
        self,
        body: str,
        message_id: str,
        *,
        receipt_handle: str | None = None,
        receive_count: int = 1,
        context: Any = None,
    ) -> None:
        """One SQS record. A retryable failure is made visible again after a short backoff
        before it is raised (and so reported as a batch item failure)."""
        try:
            self.process(body, message_id, context)
        except Exception as exc:
            delay = retry_delay(exc, receive_count)
            if delay is not None and receipt_handle:
                try:
                    self.queue.retry_in(receipt_handle, delay)
                    logger.warning(
                        "record will be tried again",
                        extra={"in_seconds": delay, "receive_count": receive_count},
                    )
                except DependencyUnavailable as why:  # it comes back after the timeout
                    logger.warning("retry delay not set", extra={"reason": why.reason})
            raise

    def process(self, body: str, message_id: str, context: Any = None) -> None:
        budget = remaining_seconds(context, float(self.settings.lease_seconds))
        if budget <= self.settings.timeout_margin_seconds:
            raise OutOfTime(f"{budget:.1f}s left in this invocation; not starting a job")
        parsed = parse_body(body)
        if isinstance(parsed, BadMessage):
            self._reject(parsed, body, message_id)
            return
        job_id = parsed.derived_job_id(message_id)
        logger.append_keys(job_id=job_id)
        try:
            if parsed.compute == "fargate":
                self.dispatcher.dispatch(job_id, parsed)
                return
            claim = self._claim(job_id, parsed, budget)
            if claim.outcome is ClaimOutcome.CLAIMED and claim.job is not None:
                self._run(claim.job, budget, invocation=getattr(context, "aws_request_id", None))
            else:
                logger.info("job not run by this delivery", extra={"claim": claim.outcome.value})
        finally:
            logger.remove_keys(["job_id"])

    def run_task(self, job_id: str, *, task_id: str | None = None) -> str:
        """The job as one Fargate task (consumer/task.py): claimed like any delivery, run
        without continuation (a task has hours, not minutes). Returns what became of it: the
        claim's outcome, or the job's status."""
        logger.append_keys(job_id=job_id)
        try:
            budget = float(self.settings.fargate_task_seconds)
            claim = self.store.claim(
                job_id, lease_seconds=self._lease(budget), max_attempts=self.settings.max_attempts
            )
            if claim.outcome is not ClaimOutcome.CLAIMED or claim.job is None:
                logger.info("job not run by this task", extra={"claim": claim.outcome.value})
                return claim.outcome.value
            ended = self._run(claim.job, budget, invocation=task_id, compute="fargate")
            return str(ended.status) if ended is not None else "lost"
        finally:
            logger.remove_keys(["job_id"])

    def _reject(self, bad: BadMessage, body: str, message_id: str) -> None:
        if bad.job_id is None:
            # It can never succeed: straight to the dead-letter queue with why, and
            # acknowledged, rather than maxReceiveCount visibility timeouts on this queue.
            logger.error(
                "unreadable message", extra={"reason": bad.reason, "message_id": message_id}
            )
            if self.dead_letters is None:
                raise PoisonMessage(bad.reason)
            self.dead_letters.dead_letter(body, bad.reason)
            self.recorder.count("MessagesDeadLettered")
            return
        failed = self.store.fail(bad.job_id, f"Job message could not be read: {bad.reason}")
        logger.error(
            "unreadable message for job", extra={"job_id": bad.job_id, "reason": bad.reason}
        )
        if failed is None:
            logger.info("job already finished; message dropped", extra={"job_id": bad.job_id})

    def _lease(self, budget: float) -> float:
        """A forked run's parent beats the heartbeat at least once a second, so its lease is
        short; an inline run beats only between nodes, so its lease is the whole budget."""
        if self.settings.isolation == "fork":
            return float(min(self.settings.job_lease_seconds, budget))
        return budget

    def _claim(self, job_id: str, message: JobMessage, budget: float) -> Claim:
        # After the lease, the sweeper (or a redelivery) may take the job over from a
        # consumer that died.
        budget = self._lease(budget)
        user_id = message.user_id or "anonymous"
        if message.job_id is None:
            # A message from another system: its job id is derived from the message, so the
            # first delivery makes the job, already claimed, in one write; a redelivery
            # finds it and claims as usual.
            created = self._create_claimed(job_id, message, user_id, budget)
            if created is not None:
                return created
        claim = self.store.claim(
            job_id,
            lease_seconds=budget,
            max_attempts=self.settings.max_attempts,
            user_id=user_id,
        )
        if claim.outcome is ClaimOutcome.NOT_FOUND:
            # Another system chose the job id itself: the same, with its id.
            created = self._create_claimed(job_id, message, user_id, budget)
            if created is not None:
                return created
            claim = self.store.claim(
                job_id, lease_seconds=budget, max_attempts=self.settings.max_attempts
            )
        if claim.outcome is ClaimOutcome.EXHAUSTED:
            self.recorder.count("JobsFailed")
        return claim

    def _create_claimed(
        self, job_id: str, message: JobMessage, user_id: str, budget: float
    ) -> Claim | None:
        job = Job.new(
            job_id=job_id,
            pipeline_name=message.pipeline_name,
            parameters=message.parameters,
            options=message.options.given(),
            user_id=user_id,
            source="sqs",
            max_job_seconds=message.max_job_seconds,
        )
        created = self.store.create_claimed(job, lease_seconds=budget)
        return None if created is None else Claim(ClaimOutcome.CLAIMED, created)

    def _run(
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
        ownership = _Ownership()
        lease = self._lease(seconds)
        next_beat = time.monotonic() + lease / 3

        def heartbeat() -> bool:
            nonlocal next_beat
            now = time.monotonic()
            if now < next_beat:
                return True
            next_beat = now + lease / 3
            try:
                cancel = self.store.heartbeat(job, lease_seconds=lease)
            except DependencyUnavailable as exc:
                # The next beat tries again; a lease lost meanwhile is fenced by the attempt.
                logger.warning("heartbeat not recorded", extra={"reason": exc.reason})
                return True
            if cancel is None:
                ownership.lost = True
                return False
            return not cancel

        def on_progress(completed: int, total: int, current: str | None) -> bool:
            if total and completed >= total:
                return False  # the final write records it; nothing is left to cancel
            progress = Progress(total_nodes=total, completed_nodes=completed, current_node=current)
            try:
                cancel = self.store.report_progress(job, progress)
            except DependencyUnavailable as exc:
                # Progress is best effort; the run goes on, and the final write retries.
                logger.warning("progress not recorded", extra={"reason": exc.reason})
                return False
            if cancel is None:
                ownership.lost = True
                return True
            return cancel

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
            runner = self.runner
        except ProjectLoadFailed as failed:
            return self._end(job, segment, RunOutcome("failed", None, str(failed), "", 0.0))
        estimates = self.node_stats.read(job.pipeline_name)
        # A node that outlives this invocation moves the job to Fargate, where one is offered.
        may_move = (
            compute == "lambda" and budget.may_continue and self.dispatcher.launcher is not None
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
            ),
            _Sink(on_progress, heartbeat),
            deadline=budget.deadline,
        )
        if ownership.lost:
            logger.warning("job was taken over by another delivery; its outcome is not recorded")
            return None
        self.node_stats.update(job.pipeline_name, estimates, outcome.node_durations)
        if outcome.status == "timed_out" and may_move and not budget.limit_binding:
            return self._move_to_fargate(job, segment, outcome)
        if outcome.status == "timed_out" and budget.limit_binding:
            limit = job_limit_seconds(job, self.settings)
            outcome = replace(outcome, error_message=over_limit_message(limit, segment.segment))
        if outcome.status == "continued" and outcome.checkpoint is not None:
            return self._continue(job, segment, outcome)
        return self._end(job, segment, outcome)

    def _continue(self, job: Job, segment: Segment, outcome: RunOutcome) -> Job | None:
        """Hand the job to the next segment, and send its message for it. If the send fails
        the job waits, handed off, until the sweeper sends it (after its grace lease)."""
        done = ended_segment(segment, "continued", outcome)
        handed = self.recorder.hand_off(
            job, outcome, [*(job.segments or []), done], checkpoint=outcome.checkpoint
        )
        if handed is None:
            return None
        try:
            self.queue.send(encode(handed.to_message()))
        except DependencyUnavailable as exc:
            logger.warning("continuation not sent; the sweeper will", extra={"reason": exc.reason})
        logger.info("job continues in another segment", extra={"segment": segment.segment + 1})
        return handed

    def _move_to_fargate(self, job: Job, segment: Segment, outcome: RunOutcome) -> Job | None:
        """A node did not fit in an invocation: the job goes on as a Fargate task, from the
        checkpoint this segment went on from (or from its first node)."""
        done = ended_segment(segment, "timed_out", outcome)
        handed = self.recorder.hand_off(
            job,
            outcome,
            [*(job.segments or []), done],
            checkpoint=job.checkpoint,
            compute="fargate",
        )
        if handed is None:
            return None
        try:
            self.queue.send(encode(handed.to_message()))
        except DependencyUnavailable as exc:
            logger.warning(
                "move to Fargate not sent; the sweeper will", extra={"reason": exc.reason}
            )
        logger.info("a node outlived the invocation: the job goes on on Fargate")
        return handed

    def _end(self, job: Job, segment: Segment, outcome: RunOutcome) -> Job | None:
        done = ended_segment(segment, _ENDED[outcome.status], outcome)
        segments = [*(job.segments or []), done]
        elapsed = sum((s.ended_at - s.started_at).total_seconds() for s in segments if s.ended_at)
        return self.recorder.finish(
            job, outcome, segments, execution_time=elapsed if len(segments) > 1 else None
        )


_ENDED = {"completed": "completed", "failed": "failed", "timed_out": "failed",
          "cancelled": "cancelled", "continued": "continued"}  # fmt: skip


@dataclass(frozen=True)
class _Sink:
    """The run's progress sink, with the heartbeat the runner's RunControl calls."""

    progress: Callable[[int, int, str | None], bool]
    heartbeat: Callable[[], bool]

    def __call__(self, completed: int, total: int, current: str | None, /) -> bool:
        return self.progress(completed, total, current)
