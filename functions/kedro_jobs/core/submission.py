"""Submitting a job: the item is written before the message is sent, and a failed send
fails the job, so no `pending` item is left without a message."""

from __future__ import annotations

import logging

from kedro_jobs.core.errors import DependencyUnavailable, UnknownPipeline
from kedro_jobs.core.manifest import Manifest
from kedro_jobs.core.models import Job
from kedro_jobs.core.queue import JobQueue
from kedro_jobs.core.store import JobStore

logger = logging.getLogger(__name__)


def check_pipeline(manifest: Manifest | None, pipeline_name: str) -> None:
    """With a manifest, an unknown name is rejected; without one, any name is accepted
    (the consumer reports an unknown pipeline as the job's failure)."""
    if manifest is not None and pipeline_name not in manifest.pipelines:
        raise UnknownPipeline(pipeline_name, list(manifest.pipelines))


def submit(store: JobStore, queue: JobQueue, job: Job) -> Job:
    store.create(job)
    try:
        queue.send(job.to_message())
    except DependencyUnavailable as exc:
        message = f"Job could not be queued ({exc.reason}); nothing ran. Submit it again."
        try:
            store.fail(job.id, message)
        except DependencyUnavailable:
            logger.exception("could not mark unqueued job %s failed", job.id)
        raise
    return job
