"""Domain errors to HTTP, in one place. Every error body is JSON with a `detail`."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kedro_jobs.api.methods import allowed_methods
from kedro_jobs.core.errors import (
    DependencyRefused,
    DependencyUnavailable,
    InvalidCursor,
    InvalidTransition,
    JobAlreadyExists,
    JobNotFound,
    JobsError,
    NotOffered,
    UnknownPipeline,
)
from kedro_jobs.core.jobs import JobNotQueued
from kedro_jobs.core.queue import UnsendableMessage
from kedro_jobs.core.scheduler import ScheduleExists, ScheduleNotFound
from kedro_jobs.core.schedules import InvalidSchedule, UnreadableSchedule
from kedro_jobs.core.selection import NothingSelected

_STATUS: dict[type[JobsError], int] = {
    JobNotFound: 404,
    InvalidTransition: 409,
    JobAlreadyExists: 409,
    InvalidCursor: 422,
    UnknownPipeline: 422,
    NotOffered: 422,
    NothingSelected: 422,
    UnsendableMessage: 422,  # checked before anything is written
    DependencyRefused: 500,  # a 4xx from AWS (AccessDenied, ...): asking again will not help
    DependencyUnavailable: 503,
    JobNotQueued: 503,  # written, then not sent: the detail names the job
    ScheduleNotFound: 404,
    ScheduleExists: 409,
    InvalidSchedule: 422,
    UnreadableSchedule: 409,  # in the group, but not as this API writes schedules
}


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 500)
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 shape, without echoing the input: it may be large, or hold values
    (NaN) that JSON cannot carry."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"type": e.get("type"), "loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg")}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    """As FastAPI answers, but a 405 lists every method of the path in `Allow` (Starlette
    lists only those of the first route it matched, e.g. POST but not GET for /jobs)."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code != 405:
        return await http_exception_handler(request, exc)
    allowed = allowed_methods(request.app, request.scope)
    return JSONResponse(
        {"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": ", ".join(allowed)}
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(JobsError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
