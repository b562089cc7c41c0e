"""`/api/v1/compute`: where a job may run, from the compute backends' registry
(core/compute/), so a client (the web page's form) offers what this deployment runs."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from kedro_jobs.api.deps import Deps
from kedro_jobs.core.compute import BACKENDS, DEFAULT
from kedro_jobs.core.requests import Compute

router = APIRouter(prefix="/compute", tags=["compute"])


class ComputeOffer(BaseModel):
    name: Compute  # a job's `compute`
    description: str
    default: bool  # a job that names no `compute` runs here
    offered: bool  # by this deployment (a job asking for one that is not gets a 422)
    reason: str | None = None  # why not, where not offered


class ComputeList(BaseModel):
    backends: list[ComputeOffer]


@router.get("", response_model=ComputeList, summary="Where a job may run")
def list_compute(services: Deps) -> ComputeList:
    settings = services.settings
    offers = []
    for backend in BACKENDS.values():
        offered = backend.offered(settings)
        offers.append(
            ComputeOffer(
                name=backend.name,
                description=backend.description,
                default=backend.name == DEFAULT,
                offered=offered,
                reason=None if offered else backend.not_offered,
            )
        )
    return ComputeList(backends=offers)
