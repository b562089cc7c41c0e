"""One SQS record to one job run: parse, claim, run, record. The handler is a thin shell
around :class:`Consumer`; a task of a task backend (Fargate) runs its job through the same class.

Exactly once: a job runs only after a conditional pending->running claim; a duplicate
delivery finds it running under a live lease (or finished) and does nothing. The claim is a
short lease that the run's heartbeat extends; if the consumer dies, the sweeper sends the
job again once the lease has expired, and the attempt number fences the old run's writes.

Retry or not, decided once (``retry_delay``): errors in the user's pipeline fail the job and
are not retried; a message that can never succeed goes to the dead-letter queue at once;
infrastructure errors (throttling, 5xx, timeouts: core/aws.py) and a lack of time are
reported to SQS with the record made visible again after a short backoff by its receive
count; a refused AWS request (a 4xx) is left to the queue's own visibility timeout.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from kedro_jobs.consumer.claim import Claimer, claimed
from kedro_jobs.consumer.context import remaining_seconds
from kedro_jobs.consumer.dispatch import Dispatcher
from kedro_jobs.consumer.groups import FanOut, GroupBusy, TaskNotConfirmed
from kedro_jobs.consumer.outcome import Recorder
from kedro_jobs.consumer.overlap import OverlapPolicy
from kedro_jobs.consumer.project import ProjectLoadFailed, Runner, project_load_message
from kedro_jobs.consumer.run import SegmentRun
from kedro_jobs.consumer.segments import NodeStats
from kedro_jobs.core.artifacts import ArtifactStore
from kedro_jobs.core.compute import TaskBackend, TaskLauncher, task_backends
from kedro_jobs.core.compute import backend as compute_backend
from kedro_jobs.core.errors import DependencyRefused, DependencyUnavailable
from kedro_jobs.core.fanout import coordinator_from_settings, parse_task
from kedro_jobs.core.manifest import Manifest, ManifestReader
from kedro_jobs.core.messages import BadMessage, RefusedMessage, may_change, parse_body
from kedro_jobs.core.queue import JobQueue
from kedro_jobs.core.requests import JobMessage
from kedro_jobs.core.settings import Settings
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store.roles.groups import GroupJobs
from kedro_jobs.core.store.roles.run import RunJobs
from kedro_jobs.core.store.roles.schedules import ScheduleJobs

logger = Logger(service="kedro-jobs-consumer", child=True)


class PoisonMessage(Exception):
    """A record that names no job and cannot be read: reported failed, so it reaches the DLQ."""


class OutOfTime(Exception):
    """Too little of the invocation is left to start this record: SQS delivers it again."""


# Failures that a later delivery may not meet: the record comes back after a short backoff.
RETRYABLE: tuple[type[Exception], ...] = (
    DependencyUnavailable,
    OutOfTime,
    GroupBusy,
    TaskNotConfirmed,
)
RETRY_FIRST_SECONDS = 5
RETRY_MAX_SECONDS = 60


def retry_delay(exc: BaseException, receive_count: int) -> int | None:
    """Seconds until a failed record is delivered again, or None to leave it to the queue's
    own visibility timeout (an unexpected error: six times the function's timeout). Doubles
    with each receive up to RETRY_MAX_SECONDS, with jitter so a burst of throttled records
    does not come back at one instant."""
    if not isinstance(exc, RETRYABLE) or isinstance(exc, DependencyRefused):
        return None
    ceiling = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (max(1, receive_count) - 1))
    # Jitter, not security: the standard generator is right.
    return max(1, round(random.uniform(ceiling / 2, ceiling)))  # noqa: S311  # nosec B311


class Consumer:
    def __init__(
        self,
        settings: Settings,
        *,
        store: RunJobs,
        artifacts: ArtifactStore,
        runner_factory: Callable[[], Runner],
        metrics: Metrics | None = None,
        queue: JobQueue | None = None,
        dead_letters: JobQueue | None = None,
        launchers: Mapping[str, TaskLauncher] | None = None,
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
        self.dispatcher = Dispatcher(
            store, launchers or {}, settings.signing_key.get_secret_value()
        )
        self.claims = Claimer(settings, store, self.recorder)
        # Each part of a delivery is given its own role over the same table.
        self.overlap = OverlapPolicy(ScheduleJobs.over(store), self.queue)
        # Fan-out (docs/fan-out.md): only where the template gives a state machine.
        coordinator = coordinator_from_settings(settings)
        self.fan_out: FanOut | None = None
        if coordinator is not None:
            self.fan_out = FanOut(
                settings,
                store=GroupJobs.over(store),
                recorder=self.recorder,
                coordinator=coordinator,
                node_stats=self.node_stats,
                runner=lambda: self.runner,
                queue=self.queue,
                launchers=lambda: self.dispatcher.launchers,
            )
        self.segments = SegmentRun(
            settings,
            store=store,
            queue=self.queue,
            recorder=self.recorder,
            node_stats=self.node_stats,
            dispatcher=self.dispatcher,
            runner=lambda: self.runner,
        )

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

    def fork_ahead(self) -> None:
        """Between batches, while no job waits: the runner may fork the next job's child now
        (runner/forked.py), if the project is loaded. Never fails the batch."""
        ahead = getattr(self._runner, "fork_ahead", None)
        if ahead is None:
            return
        try:
            ahead()
        except Exception:  # the next job forks its own child, as without it
            logger.warning("the next job's child was not forked ahead", exc_info=True)

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
                        extra={
                            "in_seconds": delay,
                            "receive_count": receive_count,
                            "reason": f"{type(exc).__name__}: {exc}"[:300],
                        },
                    )
                except DependencyUnavailable as why:  # it comes back after the timeout
                    logger.warning("retry delay not set", extra={"reason": why.reason})
            raise

    def process(self, body: str, message_id: str, context: Any = None) -> None:
        budget = remaining_seconds(context, float(self.settings.lease_seconds))
        if budget <= self.settings.timeout_margin_seconds:
            raise OutOfTime(f"{budget:.1f}s left in this invocation; not starting a job")
        task = parse_task(body) if self.fan_out is not None else None
        if task is not None and self.fan_out is not None:  # a message of a fan-out execution
            self.fan_out.handle(task, budget, getattr(context, "aws_request_id", None))
            return
        parsed = parse_body(body)
        if isinstance(parsed, BadMessage):
            self._reject(parsed, body, message_id)
            return
        job_id = parsed.derived_job_id(message_id)
        logger.append_keys(job_id=job_id)
        try:
            self._deliver(job_id, parsed, body, budget, context)
        except RefusedMessage as refused:
            self.refuse(body, refused.reason, message_id)
        finally:
            logger.remove_keys(["job_id"])

    def _deliver(
        self, job_id: str, message: JobMessage, body: str, budget: float, context: Any
    ) -> None:
        if not self.overlap.admit(job_id, message, body):
            return
        where = compute_backend(message.compute)
        if isinstance(where, TaskBackend):  # a task runs it, not this consumer
            self.dispatcher.dispatch(job_id, message, where)
            return
        claim = self.claims.for_delivery(job_id, message, budget)
        job = claimed(claim, "job not run by this delivery")
        if job is not None and not (self.fan_out and self.fan_out.start(job, budget)):
            invocation = getattr(context, "aws_request_id", None)
            self.segments.run(job, budget, invocation=invocation)

    def run_task(self, job_id: str, *, task_id: str | None = None) -> str:
        """The job as one task of its task backend (consumer/task.py): claimed like any
        delivery, run without continuation (a task has hours, not minutes). Returns what
        became of it: the claim's outcome, or the job's status."""
        logger.append_keys(job_id=job_id)
        try:
            where = self._task_backend(job_id)
            budget = where.task_seconds(self.settings)
            claim = self.claims.for_task(job_id, budget)
            job = claimed(claim, "job not run by this task")
            if job is None:
                return claim.outcome.value
            ended = self.segments.run(job, budget, invocation=task_id, compute=where.name)
            return str(ended.status) if ended is not None else "lost"
        finally:
            logger.remove_keys(["job_id"])

    def run_group_task(self, job_id: str, group_id: str, *, claim: str, task_id: str) -> str:
        """One group of a fanned-out job as a task (docs/fan-out.md): taken over from the
        ``claim`` its dispatching consumer made, run, answered. Returns what became of it."""
        logger.append_keys(job_id=job_id, group=group_id)
        try:
            if self.fan_out is None:  # no state machine here: no execution waits for it
                return "not_found"
            return self.fan_out.run_task(job_id, group_id, claim=claim, task_id=task_id)
        finally:
            logger.remove_keys(["job_id", "group"])

    def _task_backend(self, job_id: str) -> TaskBackend:
        """The task backend the job was dispatched to, as its record says (the task's
        command is only the job id); the long-node one for a job not found or not on one
        (its claim then says why it is not run)."""
        job = self.store.get(job_id, lenient=True)
        where = compute_backend(job.compute if job is not None else None)
        if isinstance(where, TaskBackend):
            return where
        return self.dispatcher.long_nodes or task_backends()[0]

    def _reject(self, bad: BadMessage, body: str, message_id: str) -> None:
        """An unreadable message. It fails the job it names only if that job is pending and
        its sender's own (the API's message, mangled); a job it names that does not exist,
        is running, or is someone else's is left alone and the message goes to the
        dead-letter queue at once with why; one naming a finished job is dropped."""
        if bad.job_id is None:
            # It can never succeed: straight to the dead-letter queue with why, and
            # acknowledged, rather than maxReceiveCount visibility timeouts on this queue.
            self._dead_letter(body, bad.reason, message_id)
            return
        job = self.store.get(bad.job_id, lenient=True)
        if job is None:
            why = f"it names job {bad.job_id!r}, which does not exist ({bad.reason})"
            self._dead_letter(body, why, message_id)
            return
        if job.status.terminal:
            logger.info("unreadable message for a finished job; dropped", extra={"job_id": job.id})
            return
        if job.status is JobStatus.PENDING and may_change(job, bad.user_id):
            failed = self.store.fail_pending(job, f"Job message could not be read: {bad.reason}")
            if failed is not None:
                logger.error(
                    "unreadable message for job", extra={"job_id": job.id, "reason": bad.reason}
                )
                return
        whose = "running" if may_change(job, bad.user_id) else "another user's"
        why = f"it names job {job.id!r}, which is {whose} and left alone ({bad.reason})"
        self._dead_letter(body, why, message_id)

    def refuse(self, body: str, reason: str, message_id: str) -> None:
        """A readable message that may not make its job (consumer/claim.py): refused like an
        unreadable one, on the dead-letter queue with why."""
        self._dead_letter(body, reason, message_id)

    def _dead_letter(self, body: str, reason: str, message_id: str) -> None:
        logger.error("message refused", extra={"reason": reason, "message_id": message_id})
        if self.dead_letters is None:
            raise PoisonMessage(reason)
        self.dead_letters.dead_letter(body, reason)
        self.recorder.count("MessagesDeadLettered")
