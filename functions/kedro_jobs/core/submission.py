"""Submitting a job: the message is checked sendable, then the item is written, then the
message is sent; a failed send (of any kind) fails the job, so no `pending` item is left
without a message."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from kedro_jobs.core.errors import DependencyUnavailable, JobsError, NotOffered, UnknownPipeline
from kedro_jobs.core.manifest import Manifest
from kedro_jobs.core.models import Compute, Job
from kedro_jobs.core.queue import JobQueue, UnsendableMessage, encode
from kedro_jobs.core.settings import Settings
from kedro_jobs.core.store import JobStore

logger = logging.getLogger(__name__)


class JobNotQueued(JobsError):
    """The job was written but its message could not be sent: it will not run."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(
            f"Job {job_id!r} could not be queued ({reason}); it will not run. Submit it again."
        )
        self.job_id = job_id
        self.reason = reason


def check_pipeline(manifest: Manifest | None, pipeline_name: str) -> None:
    """With a manifest, an unknown name is rejected; without one, any name is accepted
    (the consumer reports an unknown pipeline as the job's failure), and so with one from a
    project that failed to load (the job then fails at once saying why)."""
    if manifest is None or manifest.load_error is not None:
        return
    if pipeline_name not in manifest.pipelines:
        raise UnknownPipeline(pipeline_name, list(manifest.pipelines))


def check_offered(settings: Settings, compute: Compute, max_job_seconds: int | None) -> None:
    """What a job asks of the deployment: Fargate only where a cluster is configured; a
    time limit no longer than the deployment's (a job may ask for less, never more)."""
    if compute == "fargate" and not settings.fargate_cluster:
        raise NotOffered(
            'compute "fargate" is not offered by this deployment (no FARGATE_CLUSTER); '
            'use "lambda", which continues long jobs across invocations'
        )
    if max_job_seconds is not None and max_job_seconds > settings.max_job_seconds:
        raise NotOffered(
            f"max_job_seconds {max_job_seconds} is over this deployment's limit of "
            f"{settings.max_job_seconds} s; ask for {settings.max_job_seconds} or less"
        )


def submit(store: JobStore, queue: JobQueue, job: Job) -> Job:
    try:
        body = encode(job.to_message())  # before the write: a bad message writes nothing
    except ValidationError as exc:
        raise UnsendableMessage(f"it is not a valid job message: {exc.errors()[0]['msg']}") from exc
    store.create(job)
    try:
        queue.send(body)
    except Exception as exc:  # of any kind, botocore's or not: the item must not stay pending
        if isinstance(exc, DependencyUnavailable):
            reason = str(exc)
        else:
            reason = f"unexpected {type(exc).__name__}"
            logger.exception("sending the message of job %s failed", job.id)
        unqueued = JobNotQueued(job.id, reason)
        try:
            store.fail(job.id, str(unqueued))
        except Exception:
            logger.exception("could not mark unqueued job %s failed", job.id)
        raise unqueued from exc
    return job
