"""`/api/v1/jobs`: submit, get, list, cancel, retry, logs."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.metrics import MetricUnit
from fastapi import APIRouter, Body, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import PlainTextResponse

from kedro_jobs.api.app_models import JOB_NOT_FOUND, ErrorBody
from kedro_jobs.api.cross_site import CROSS_SITE_RESPONSES, refuse_cross_site
from kedro_jobs.api.deps import Deps, JobId, User
from kedro_jobs.api.identity import AUTH_RESPONSES
from kedro_jobs.api.telemetry import metrics
from kedro_jobs.core import jobs
from kedro_jobs.core.artifacts import log_key
from kedro_jobs.core.models import Job, JobPage
from kedro_jobs.core.requests import JobRequest, PipelineName, ScheduleName
from kedro_jobs.core.rerun import RetryRequest
from kedro_jobs.core.states import JobStatus

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=AUTH_RESPONSES)

_ERROR = {"model": ErrorBody}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {**_ERROR, "description": "Not allowed in the job's current state"}
}

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=256,
        description="Retries with the same key return the first job for 24 hours.",
    ),
]


def _counted(job: Job) -> Job:
    """A job just made (not one an Idempotency-Key replays)."""
    metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=1)
    return job


def _located(http: Request, response: Response, job: Job) -> Job:
    response.headers["Location"] = str(http.app.url_path_for("get_job", job_id=job.id))
    return job


@router.post(
    "",
    status_code=202,
    response_model=Job,
    summary="Submit a pipeline run",
    responses={
        409: {**_ERROR, "description": "Same Idempotency-Key still in progress"},
        **CROSS_SITE_RESPONSES,
    },
    dependencies=[Depends(refuse_cross_site)],
)
def submit_job(
    request: JobRequest,
    http: Request,
    response: Response,
    services: Deps,
    user: User,
    idempotency_key: IdempotencyKey = None,
) -> Job:
    def make() -> Job:
        return _counted(jobs.submit(services, user, request))

    if idempotency_key is None:
        job = make()
    else:
        context = http.scope.get("aws.context")
        job = services.submit_once(user, idempotency_key, request, make, context)
    return _located(http, response, job)


@router.get("", response_model=JobPage, summary="List your jobs, newest first")
def list_jobs(
    services: Deps,
    user: User,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    status: JobStatus | None = None,
    pipeline_name: Annotated[PipelineName | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
    schedule: Annotated[ScheduleName | None, Query(description="A schedule's runs")] = None,
) -> JobPage:
    return services.store.list_jobs(
        user,
        status=status,
        pipeline_name=pipeline_name,
        limit=limit,
        cursor=cursor,
        schedule=schedule,
    )


@router.get("/{job_id}", response_model=Job, summary="Get a job", responses=JOB_NOT_FOUND)
def get_job(job_id: JobId, services: Deps, user: User) -> Job:
    return services.store.get_for_user(job_id, user)


@router.post(
    "/{job_id}/cancel",
    response_model=Job,
    summary="Cancel a job",
    responses={**JOB_NOT_FOUND, **CONFLICT, **CROSS_SITE_RESPONSES},
    dependencies=[Depends(refuse_cross_site)],
)
def cancel_job(job_id: JobId, services: Deps, user: User) -> Job:
    return services.store.request_cancel(job_id, user)


@router.post(
    "/{job_id}/retry",
    status_code=202,
    response_model=Job,
    summary="Run a job again (all of it, or from where it failed)",
    responses={**JOB_NOT_FOUND, **CONFLICT, **CROSS_SITE_RESPONSES},
    dependencies=[Depends(refuse_cross_site)],
)
def retry_job(
    job_id: JobId,
    http: Request,
    response: Response,
    services: Deps,
    user: User,
    body: Annotated[RetryRequest | None, Body()] = None,
) -> Job:
    if body is not None and body.from_failure:
        job = jobs.retry_from_failure(services, job_id, user)
    else:
        job = jobs.retry(services, job_id, user)
    return _located(http, response, _counted(job))


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
