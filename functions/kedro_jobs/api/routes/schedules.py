"""`/api/v1/schedules`: a pipeline run on a cron, a rate or once at a time (core/schedules.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from kedro_jobs.api.app_models import ErrorBody
from kedro_jobs.api.deps import Deps, User
from kedro_jobs.api.identity import AUTH_RESPONSES
from kedro_jobs.core import schedules
from kedro_jobs.core.models import Job
from kedro_jobs.core.requests import SCHEDULE_NAME
from kedro_jobs.core.scheduler import ScheduleNotFound
from kedro_jobs.core.schedules import Schedule, ScheduleChange, SchedulePage, ScheduleRequest

router = APIRouter(prefix="/schedules", tags=["schedules"], responses=AUTH_RESPONSES)

_ERROR = {"model": ErrorBody}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {**_ERROR, "description": "Unknown schedule"}}


def _name(name: str) -> str:
    """A name of a shape no schedule has cannot exist: 404 without asking Scheduler."""
    if not SCHEDULE_NAME.match(name):
        raise ScheduleNotFound(name[:64])
    return name


Name = Annotated[str, Depends(_name)]


@router.post(
    "",
    status_code=201,
    response_model=Schedule,
    summary="Create a schedule",
    responses={409: {**_ERROR, "description": "A schedule of that name exists"}},
)
def create_schedule(
    request: ScheduleRequest, http: Request, response: Response, services: Deps, user: User
) -> Schedule:
    schedule = schedules.create(services, user, request)
    response.headers["Location"] = str(http.app.url_path_for("get_schedule", name=schedule.name))
    return schedule


@router.get("", response_model=SchedulePage, summary="List your schedules, by name")
def list_schedules(
    services: Deps,
    user: User,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> SchedulePage:
    return schedules.list_schedules(services, user, limit=limit, cursor=cursor)


@router.get("/{name}", response_model=Schedule, summary="Get a schedule", responses=NOT_FOUND)
def get_schedule(name: Name, services: Deps, user: User) -> Schedule:
    return schedules.get(services, user, name)


@router.patch("/{name}", response_model=Schedule, summary="Change a schedule", responses=NOT_FOUND)
def change_schedule(name: Name, patch: ScheduleChange, services: Deps, user: User) -> Schedule:
    return schedules.change(services, user, name, patch)


@router.delete("/{name}", status_code=204, summary="Delete a schedule", responses=NOT_FOUND)
def delete_schedule(name: Name, services: Deps, user: User) -> Response:
    schedules.delete(services, user, name)
    return Response(status_code=204)


@router.post(
    "/{name}/pause", response_model=Schedule, summary="Pause a schedule", responses=NOT_FOUND
)
def pause_schedule(name: Name, services: Deps, user: User) -> Schedule:
    return schedules.set_state(services, user, name, enabled=False)


@router.post(
    "/{name}/resume", response_model=Schedule, summary="Resume a schedule", responses=NOT_FOUND
)
def resume_schedule(name: Name, services: Deps, user: User) -> Schedule:
    return schedules.set_state(services, user, name, enabled=True)


@router.post(
    "/{name}/run",
    status_code=202,
    response_model=Job,
    summary="Run a schedule's job now",
    responses={**NOT_FOUND, 409: {**_ERROR, "description": "Run already made this second"}},
)
def run_schedule(name: Name, http: Request, response: Response, services: Deps, user: User) -> Job:
    job = schedules.run_now(services, user, name)
    response.headers["Location"] = str(http.app.url_path_for("get_job", job_id=job.id))
    return job
