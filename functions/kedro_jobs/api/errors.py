"""Domain errors to HTTP, in one place. Every error body is JSON with a `detail`."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from kedro_jobs.core.errors import (
    DependencyUnavailable,
    InvalidCursor,
    InvalidTransition,
    JobAlreadyExists,
    JobNotFound,
    JobsError,
    UnknownPipeline,
)

_STATUS: dict[type[JobsError], int] = {
    JobNotFound: 404,
    InvalidTransition: 409,
    JobAlreadyExists: 409,
    InvalidCursor: 422,
    UnknownPipeline: 422,
    DependencyUnavailable: 503,
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


def install(app: FastAPI) -> None:
    app.add_exception_handler(JobsError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
