"""`/api/v1/pipelines`: the Kedro project's pipelines, from the manifest the consumer publishes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from kedro_jobs.api.app_models import ErrorBody
from kedro_jobs.api.deps import Deps
from kedro_jobs.core.manifest import Manifest, PipelineInfo
from kedro_jobs.names import unknown_pipeline_message

router = APIRouter(prefix="/pipelines", tags=["pipelines"])


class PipelineList(BaseModel):
    pipelines: list[PipelineInfo]
    project: str | None = None
    kedro_version: str | None = None
    generated_at: str | None = None


_NOT_LOADED: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "The Kedro project failed to load"}
}


def _loaded(manifest: Manifest | None) -> Manifest | None:
    if manifest is not None and manifest.load_error is not None:
        raise HTTPException(503, manifest.load_error)
    return manifest


@router.get(
    "", response_model=PipelineList, summary="List the project's pipelines", responses=_NOT_LOADED
)
def list_pipelines(services: Deps) -> PipelineList:
    manifest = _loaded(services.manifest.get())
    if manifest is None:
        return PipelineList(pipelines=[])
    return PipelineList(
        pipelines=[manifest.pipelines[name] for name in sorted(manifest.pipelines)],
        project=manifest.project,
        kedro_version=manifest.kedro_version,
        generated_at=manifest.generated_at,
    )


@router.get(
    "/{name}",
    response_model=PipelineInfo,
    summary="One pipeline's nodes and datasets",
    responses={404: {"model": ErrorBody, "description": "No such pipeline"}, **_NOT_LOADED},
)
def get_pipeline(name: str, services: Deps) -> PipelineInfo:
    manifest = _loaded(services.manifest.get())
    if manifest is None or name not in manifest.pipelines:
        known = manifest.pipelines if manifest else None
        raise HTTPException(404, unknown_pipeline_message(name, known))
    return manifest.pipelines[name]
