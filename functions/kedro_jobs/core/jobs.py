"""The API's use cases that make a job: submit, retry and rerun from failure (whose rules
live in core/rerun.py). The routes call these and only turn the result into HTTP.

Submitting: what the job asks of the deployment is checked, and its pipeline against the
manifest; then the message is checked sendable, the item is written, and the message is
sent. A failed send (of any kind) fails the job, so no `pending` item is left without a
message. Reading and cancelling a job are one store call each (`ApiJobs.get_for_user`,
`request_cancel`, `list_jobs`), which the routes make themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from kedro_jobs.core.artifacts import ArtifactStore, parse_s3_uri
from kedro_jobs.core.compute import backend as compute_backend
from kedro_jobs.core.errors import (
    DependencyUnavailable,
    InvalidTransition,
    JobsError,
    NotOffered,
    UnknownPipeline,
)
from kedro_jobs.core.manifest import Manifest, ManifestReader
from kedro_jobs.core.models import Job, utcnow
from kedro_jobs.core.queue import JobQueue, UnsendableMessage, encode
from kedro_jobs.core.requests import Compute, JobRequest, RunOptions
from kedro_jobs.core.rerun import rerun_fields
from kedro_jobs.core.selection import selected_nodes
from kedro_jobs.core.settings import Settings
from kedro_jobs.core.store.roles.api import ApiJobs

logger = logging.getLogger(__name__)


class Backends(Protocol):
    """What the use cases need; read only when used (the API's `Services` is one)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def store(self) -> ApiJobs: ...
    @property
    def queue(self) -> JobQueue: ...
    @property
    def manifest(self) -> ManifestReader: ...


class JobNotQueued(JobsError):
    """The job was written but its message could not be sent: it will not run."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(
            f"Job {job_id!r} could not be queued ({reason}); it will not run. Submit it again."
        )
        self.job_id = job_id
        self.reason = reason


def submit(
    backends: Backends,
    user: str,
    request: JobRequest,
    *,
    retry_of: str | None = None,
    reuse: dict[str, Any] | None = None,
) -> Job:
    """A new job for ``user``, written and queued (``retry_of``: the job it runs again;
    ``reuse``: what a rerun from failure goes on from)."""
    check_offered(backends.settings, request.compute, request.max_job_seconds)
    check_pipeline(backends.manifest.get(), request.pipeline_name, request.options)
    job = Job.new(request, user_id=user, retry_of=retry_of)
    if reuse:
        job = job.model_copy(update=reuse)
    return _write_then_send(backends.store, backends.queue, job)


def retry(backends: Backends, job_id: str, user: str) -> Job:
    """A new job with the request of ``user``'s finished job ``job_id``."""
    original = _original(backends, job_id, user)
    if not original.status.terminal:
        raise InvalidTransition(job_id, original.status, "retried until it has finished")
    return submit(backends, user, request_of(original), retry_of=original.id)


def _original(backends: Backends, job_id: str, user: str) -> Job:
    """``user``'s job ``job_id``, to be run again: its request must be readable in full."""
    original = backends.store.get_for_user(job_id, user)
    if original.unreadable:
        raise InvalidTransition(
            job_id, original.status, "retried: its stored request could not be read in full"
        )
    return original


def request_of(job: Job) -> JobRequest:
    """The request that made ``job``, as it would be accepted today."""
    try:
        return JobRequest.model_validate(job.spec())
    except ValidationError as exc:  # a job from before a limit was added, e.g. `env: ".."`
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidTransition(
            job.id,
            job.status,
            f"retried: its request is no longer accepted ({where}: {first['msg']})",
        ) from exc


def check_pipeline(
    manifest: Manifest | None, pipeline_name: str, options: RunOptions | None = None
) -> None:
    """With a manifest, an unknown name is rejected, and run options that select no node of
    the pipeline (core/selection.py); without one, any name is accepted (the consumer reports
    an unknown pipeline as the job's failure), and so with one from a project that failed to
    load (the job then fails at once saying why)."""
    if manifest is None or manifest.load_error is not None:
        return
    if pipeline_name not in manifest.pipelines:
        raise UnknownPipeline(pipeline_name, list(manifest.pipelines))
    if options:
        selected_nodes(manifest.pipelines[pipeline_name], options)


def check_offered(settings: Settings, compute: Compute, max_job_seconds: int | None) -> None:
    """What a job asks of the deployment: a compute backend it offers (core/compute/); a
    time limit no longer than the deployment's (a job may ask for less, never more)."""
    where = compute_backend(compute)
    if not where.offered(settings):
        raise NotOffered(where.not_offered)
    if max_job_seconds is not None and max_job_seconds > settings.max_job_seconds:
        raise NotOffered(
            f"max_job_seconds {max_job_seconds} is over this deployment's limit of "
            f"{settings.max_job_seconds} s; ask for {settings.max_job_seconds} or less"
        )


def enqueue(backends: Backends, job: Job) -> Job:
    """Write ``job`` and send its message (a schedule's run-now job, made elsewhere)."""
    return _write_then_send(backends.store, backends.queue, job)


def _write_then_send(store: ApiJobs, queue: JobQueue, job: Job) -> Job:
    try:
        body = encode(job.to_message())  # before the write: a bad message writes nothing
    except ValidationError as exc:
        raise UnsendableMessage(f"it is not a valid job message: {exc.errors()[0]['msg']}") from exc
    store.create(job, announce=False)
    unsent: Exception | None = None
    try:
        queue.send(body)
    except Exception as exc:  # of any kind, botocore's or not: the item must not stay pending
        unsent = exc
    # Its "created" event once its message is sent, not between the two: a consumer may
    # claim it from then on (off the job's path: ~5 ms of a trivial job's latency).
    store.events.changed(job)
    if unsent is not None:
        if isinstance(unsent, DependencyUnavailable):
            reason = str(unsent)
        else:
            reason = f"unexpected {type(unsent).__name__}"
            logger.error("sending the message of job %s failed", job.id, exc_info=unsent)
        unqueued = JobNotQueued(job.id, reason)
        try:
            store.fail(job.id, str(unqueued))
        except Exception:
            logger.exception("could not mark unqueued job %s failed", job.id)
        raise unqueued from unsent
    return job


class RerunBackends(Backends, Protocol):
    @property
    def artifacts(self) -> ArtifactStore: ...


def file_exists(artifacts: ArtifactStore) -> Callable[[str], bool]:
    """Whether a file a stopped job kept (a checkpoint's manifest, a hand-over's index) is
    still there: on S3, or in a local data root."""

    def exists(location: str) -> bool:
        if parse_s3_uri(location) is not None:
            return artifacts.exists_at(location)
        return Path(location).is_file()

    return exists


def retry_from_failure(
    backends: RerunBackends, job_id: str, user: str, *, now: datetime | None = None
) -> Job:
    """A new job with the request of ``user``'s stopped job ``job_id`` that goes on from what
    it kept (the nodes, or a fanned-out job's groups, that completed are not run again)."""
    original = _original(backends, job_id, user)
    reuse = rerun_fields(original, now or utcnow(), file_exists(backends.artifacts))
    return submit(backends, user, request_of(original), retry_of=original.id, reuse=reuse)
