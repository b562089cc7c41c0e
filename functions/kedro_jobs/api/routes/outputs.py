"""`/api/v1/jobs/{id}/outputs`: the datasets a job saved, and a download of each.

An output on S3 is downloaded from S3 itself, through a presigned GET URL (the API never
carries the bytes); an output in a local data root (``make dev``) is served by the API. Only a
location the job's record names is ever presigned or served: the dataset name picks one of the
record's outputs, and is never turned into a path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from kedro_jobs.api.app_models import JOB_NOT_FOUND, ErrorBody
from kedro_jobs.api.deps import Deps, JobId, User
from kedro_jobs.api.identity import AUTH_RESPONSES
from kedro_jobs.api.services import Services
from kedro_jobs.core.artifacts import parse_s3_uri
from kedro_jobs.core.models import Job, OutputInfo

router = APIRouter(prefix="/jobs", tags=["outputs"], responses=AUTH_RESPONSES)

_OUTPUT_LIST = TypeAdapter(list[OutputInfo])
# Names listed in a 404 for an unknown dataset, at most: enough to spot a typo.
_NAMES_SHOWN = 20


class Output(OutputInfo):
    url: str | None = Field(
        None,
        description="Downloads the file: a presigned S3 URL, or this API's download route for "
        "a file in a local data root. None where the API cannot serve the location.",
    )


class OutputList(BaseModel):
    outputs: list[Output]


# `:path` lets a name hold any character a Kedro dataset name may (dots, `@`, even `/`).
DatasetName = Annotated[str, PathParam(description="The dataset's name, as in `outputs[].name`")]


def _recorded(services: Services, job: Job) -> list[OutputInfo]:
    """The job's outputs: on the record, or in the S3 object it points to when the list was
    too large for the record. A job that saved nothing (or has not finished) has none."""
    if "outputs" in job.unreadable:
        raise HTTPException(404, f"Job {job.id!r}: its stored list of outputs could not be read")
    if job.outputs is not None:
        return job.outputs
    location = job.outputs_location
    if not location:
        return []
    text = services.artifacts.get_text_at(location) if parse_s3_uri(location) else None
    if text is None:
        raise HTTPException(
            404, f"Job {job.id!r}: its list of outputs is no longer stored at {location}"
        )
    try:
        return _OUTPUT_LIST.validate_json(text)
    except ValidationError as exc:
        raise HTTPException(
            404, f"Job {job.id!r}: its stored list of outputs at {location} could not be read"
        ) from exc


def _download_path(request: Request, job_id: str, name: str) -> str:
    # `@` and `.` stay as they are, so the URL reads like the name; anything else is escaped.
    path = request.app.url_path_for(
        "download_output", job_id=quote(job_id, safe=""), dataset=quote(name, safe="@")
    )
    return str(path)


def _url(output: OutputInfo, job_id: str, request: Request, services: Services) -> str | None:
    if parse_s3_uri(output.uri):
        url: str = services.artifacts.presigned_get(
            output.uri, services.settings.output_url_seconds
        )
        return url
    if os.path.isabs(output.uri):
        return str(request.base_url).rstrip("/") + _download_path(request, job_id, output.name)
    return None


@router.get(
    "/{job_id}/outputs",
    response_model=OutputList,
    summary="The datasets the job saved, with download URLs",
    responses=JOB_NOT_FOUND,
)
def list_outputs(job_id: JobId, request: Request, services: Deps, user: User) -> OutputList:
    job = services.store.get_for_user(job_id, user)
    return OutputList(
        outputs=[
            Output(**output.model_dump(), url=_url(output, job.id, request, services))
            for output in _recorded(services, job)
        ]
    )


def _unknown(job: Job, name: str, outputs: list[OutputInfo]) -> HTTPException:
    names = [output.name for output in outputs]
    shown = ", ".join(repr(n) for n in names[:_NAMES_SHOWN]) or "none"
    more = f" and {len(names) - _NAMES_SHOWN} more" if len(names) > _NAMES_SHOWN else ""
    return HTTPException(
        404, f"Job {job.id!r} has no output named {name!r}; its outputs: {shown}{more}"
    )


@router.get(
    "/{job_id}/outputs/{dataset:path}",
    summary="Download one output",
    response_class=Response,  # a redirect or the file; errors stay JSON like every route's
    responses={
        200: {
            "description": "The file (an output in a local data root)",
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        },
        307: {
            "description": "An output on S3: `Location` is a presigned GET URL",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        404: {
            "model": ErrorBody,
            "content": {"application/json": {}},
            "description": "Unknown job or dataset, or no single file at the output's location "
            "(a folder dataset, or the file is gone)",
        },
    },
)
def download_output(job_id: JobId, dataset: DatasetName, services: Deps, user: User) -> Response:
    job = services.store.get_for_user(job_id, user)
    outputs = _recorded(services, job)
    output = next((o for o in outputs if o.name == dataset), None)
    if output is None:
        raise _unknown(job, dataset, outputs)
    uri = output.uri
    if parse_s3_uri(uri):
        # A folder dataset's URI is a prefix, not an object: say so here rather than send
        # the caller to S3's XML error.
        if not services.artifacts.exists_at(uri):
            raise HTTPException(
                404, f"Output {dataset!r} is not a single file at {uri} (a folder, or removed)"
            )
        url = services.artifacts.presigned_get(uri, services.settings.output_url_seconds)
        # The URL expires: nothing may keep the redirect longer than that.
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    if os.path.isabs(uri):
        path = Path(uri)  # exactly the recorded location; nothing from the request
        if path.is_dir():
            raise HTTPException(
                404, f"Output {dataset!r} is a folder ({uri}); download its files from there"
            )
        if not path.is_file():
            raise HTTPException(404, f"Output {dataset!r} is no longer at {uri}")
        return FileResponse(path, media_type="application/octet-stream", filename=path.name)
    raise HTTPException(
        404, f"Output {dataset!r} is at {uri}, which this API cannot serve (S3 or local only)"
    )
