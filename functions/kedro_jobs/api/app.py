"""The FastAPI app: the same one runs behind Mangum on Lambda and under uvicorn locally."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from kedro_jobs.api import errors
from kedro_jobs.api.app_models import COMMON_RESPONSES
from kedro_jobs.api.limits import BodySizeLimit
from kedro_jobs.api.methods import HeadAsGet
from kedro_jobs.api.routes import compute, health, jobs, outputs, pipelines, schedules
from kedro_jobs.api.services import Services
from kedro_jobs.api.web.router import router as web_router

API_PREFIX = "/api/v1"


def create_app(services: Services | None = None) -> FastAPI:
    app = FastAPI(
        title="kedro-jobs",
        version="1",
        description="Run Kedro pipelines as tracked jobs on AWS Lambda.",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.services = services or Services()
    # Documented for every route: schema-conformance fuzzing checks these exist.
    api = APIRouter(prefix=API_PREFIX, responses=COMMON_RESPONSES)
    api.include_router(jobs.router)
    api.include_router(outputs.router)
    api.include_router(pipelines.router)
    api.include_router(health.router)
    api.include_router(schedules.router)
    api.include_router(compute.router)
    app.include_router(api)
    errors.install(app)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(HeadAsGet)

    # The web page at `/` (assets under `/ui/`), served by this same function.
    app.include_router(web_router)

    return app
