"""`/api/v1/jobs`: submit, get, list, cancel, retry, logs."""

from __future__ import annotations

import re
from typing import Annotated, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError

from kedro_jobs.api.app_models import ErrorBody
from kedro_jobs.api.identity import AUTH_RESPONSES, current_user
from kedro_jobs.api.services import Services, get_services
from kedro_jobs.api.telemetry import metrics
from kedro_jobs.core.artifacts import log_key
from kedro_jobs.core.errors import InvalidTransition, JobNotFound
from kedro_jobs.core.models import Job, JobPage, JobRequest, PipelineName
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.submission import check_offered, check_pipeline, submit

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=AUTH_RESPONSES)

_ERROR = {"model": ErrorBody}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {**_ERROR, "description": "No such job, or not yours"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {**_ERROR, "description": "Not allowed in the job's current state"}
}

User = Annotated[str, Depends(current_user)]
Deps = Annotated[Services, Depends(get_services)]
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _job_id(job_id: str) -> str:
    """An id of a shape no job has cannot exist: 404 without asking DynamoDB."""
    if not _JOB_ID.match(job_id):
        raise JobNotFound(job_id[:64])
    return job_id


JobId = Annotated[str, Depends(_job_id)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=256,
        description="Retries with the same key return the first job for 24 hours.",
    ),
]


def _location(response: Response, job: Job) -> None:
    response.headers["Location"] = f"/api/v1/jobs/{job.id}"


def _new_job(services: Services, user: str, request: JobRequest, retry_of: str | None) -> Job:
    check_offered(services.settings, request.compute, request.max_job_seconds)
    check_pipeline(services.manifest.get(), request.pipeline_name)
    job = Job.new(
        pipeline_name=request.pipeline_name,
        parameters=request.parameters,
        options=request.options.given(),
        user_id=user,
        retry_of=retry_of,
        compute=request.compute,
        max_job_seconds=request.max_job_seconds,
    )
    submitted = submit(services.store, services.queue, job)
    metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=1)
    return submitted


def _submit_once(
    services: Services, user: str, request: JobRequest, key: str, lambda_context: Any
) -> Job:
    """Powertools' idempotency: the key is the caller's header (per user); the body is the
    payload it validates, so the same key with another body is rejected."""
    config = IdempotencyConfig(
        event_key_jmespath="key",
        payload_validation_jmespath="body",
        expires_after_seconds=services.settings.idempotency_ttl_seconds,
        raise_on_no_idempotency_key=True,
    )
    if lambda_context is not None:  # lets an in-progress record expire with the invocation
        config.register_lambda_context(lambda_context)

    @idempotent_function(  # type: ignore[untyped-decorator]
        data_keyword_argument="data",
        persistence_store=services.idempotency_store,
        config=config,
        key_prefix="submit",
    )
    def run(data: dict[str, Any]) -> dict[str, Any]:
        return _new_job(services, user, request, None).model_dump(mode="json")

    try:
        record = run(data={"key": f"{user}\n{key}", "body": request.model_dump(mode="json")})
    except IdempotencyValidationError as exc:
        raise HTTPException(
            422, "This Idempotency-Key was already used with a different request body"
        ) from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise HTTPException(
            409, "A request with this Idempotency-Key is still in progress; retry shortly"
        ) from exc
    return Job.model_validate(record)


@router.post(
    "",
    status_code=202,
    response_model=Job,
    summary="Submit a pipeline run",
    responses={409: {**_ERROR, "description": "Same Idempotency-Key still in progress"}},
)
def submit_job(
    request: JobRequest,
    http: Request,
    response: Response,
    services: Deps,
    user: User,
    idempotency_key: IdempotencyKey = None,
) -> Job:
    if idempotency_key is None:
        job = _new_job(services, user, request, None)
    else:
        job = _submit_once(services, user, request, idempotency_key, http.scope.get("aws.context"))
    _location(response, job)
    return job


@router.get("", response_model=JobPage, summary="List your jobs, newest first")
def list_jobs(
    services: Deps,
    user: User,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    status: JobStatus | None = None,
    pipeline_name: Annotated[PipelineName | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> JobPage:
    return services.store.list_jobs(
        user, status=status, pipeline_name=pipeline_name, limit=limit, cursor=cursor
    )


@router.get("/{job_id}", response_model=Job, summary="Get a job", responses=NOT_FOUND)
def get_job(job_id: JobId, services: Deps, user: User) -> Job:
    return services.store.get_for_user(job_id, user)


@router.post(
    "/{job_id}/cancel",
    response_model=Job,
    summary="Cancel a job",
    responses={**NOT_FOUND, **CONFLICT},
)
def cancel_job(job_id: JobId, services: Deps, user: User) -> Job:
    return services.store.request_cancel(job_id, user)


@router.post(
    "/{job_id}/retry",
    status_code=202,
    response_model=Job,
    summary="Run a job again",
    responses={**NOT_FOUND, **CONFLICT},
)
def retry_job(job_id: JobId, response: Response, services: Deps, user: User) -> Job:
    original = services.store.get_for_user(job_id, user)
    if not original.status.terminal:
        raise InvalidTransition(job_id, original.status, "retried until it has finished")
    if original.unreadable:
        raise InvalidTransition(
            job_id, original.status, "retried: its stored request could not be read in full"
        )
    try:
        request = JobRequest(
            pipeline_name=original.pipeline_name,
            parameters=original.parameters,
            options=original.options,
            compute=original.compute,
            max_job_seconds=original.max_job_seconds,
        )
    except ValidationError as exc:  # a job from before a limit was added, e.g. `env: ".."`
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidTransition(
            job_id,
            original.status,
            f"retried: its request is no longer accepted ({where}: {first['msg']})",
        ) from exc
    job = _new_job(services, user, request, original.id)
    _location(response, job)
    return job


@router.get(
    "/{job_id}/logs",
    summary="The run's log",
    response_class=Response,  # text/plain on success; errors stay JSON like every route's
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        404: {
            **_ERROR,
            "content": {"application/json": {}},
            "description": "Unknown job, or no log yet",
        },
    },
)
def job_logs(job_id: JobId, services: Deps, user: User) -> PlainTextResponse:
    job = services.store.get_for_user(job_id, user)
    text = services.artifacts.get_text(log_key(job.id))
    if text is None:
        raise HTTPException(404, f"Job {job_id!r} has no log yet (status: {job.status})")
    return PlainTextResponse(text)
