"""`/api/v1/jobs/{id}/outputs`: the datasets a job saved, and a download of each.

An output on S3 is downloaded from S3 itself, through a presigned GET URL (the API never
carries the bytes); an output in a local data root (``make dev``) is served by the API. Only a
location the job's record names is ever presigned or served: the dataset name picks one of the
record's outputs, and is never turned into a path. A folder output (a PartitionedDataset, a
Spark table) answers with its files, each with its own URL; one of its files is asked for by
its path inside the folder (``?file=``), which must be one of the files listed there.

Links to this API are built from the ``API_BASE_URL`` setting (relative when it is empty),
never from the request's Host header, which the client chooses.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
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
# Files listed for a folder output, at most (one S3 listing page).
FOLDER_FILES_SHOWN = 1000


class Output(OutputInfo):
    url: str | None = Field(
        None,
        description="Downloads the file: a presigned S3 URL, or this API's download route for "
        "a file in a local data root. None where the API cannot serve the location.",
    )


class OutputList(BaseModel):
    outputs: list[Output]


class FolderFile(BaseModel):
    path: str = Field(description="The file's path inside the folder")
    size: int
    url: str = Field(description="Downloads the file: a presigned S3 URL, or this API's route")


class FolderListing(BaseModel):
    """A folder output: what it holds now (a later job committing it replaces it)."""

    name: str
    uri: str
    files: list[FolderFile]
    truncated: bool = Field(description=f"More than {FOLDER_FILES_SHOWN} files: the rest left out")


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


def _api_url(
    request: Request, services: Services, job_id: str, name: str, file: str | None = None
) -> str:
    # `@` and `.` stay as they are, so the URL reads like the name; anything else is escaped.
    path = str(
        request.app.url_path_for(
            "download_output", job_id=quote(job_id, safe=""), dataset=quote(name, safe="@")
        )
    )
    if file is not None:
        path += f"?file={quote(file, safe='/')}"
    return services.settings.api_base_url.rstrip("/") + path


def _url(output: OutputInfo, job_id: str, request: Request, services: Services) -> str | None:
    if output.files is not None and (parse_s3_uri(output.uri) or os.path.isabs(output.uri)):
        return _api_url(request, services, job_id, output.name)  # its list of files
    if parse_s3_uri(output.uri):
        url: str = services.artifacts.presigned_get(
            output.uri, services.settings.output_url_seconds
        )
        return url
    if os.path.isabs(output.uri):
        return _api_url(request, services, job_id, output.name)
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
    summary="Download one output (a folder output: its files, each with a URL)",
    response_class=Response,  # a redirect, the file or a folder's list; errors stay JSON
    responses={
        200: {
            "model": FolderListing,
            "description": "The file (an output in a local data root); or, for a folder "
            "output, its files, each with a URL",
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        },
        307: {
            "description": "An output (or a folder's file) on S3: `Location` is a presigned "
            "GET URL",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        404: {
            "model": ErrorBody,
            "content": {"application/json": {}},
            "description": "Unknown job, dataset or file, or nothing at the output's location",
        },
    },
)
def download_output(
    job_id: JobId,
    dataset: DatasetName,
    request: Request,
    services: Deps,
    user: User,
    file: Annotated[
        str | None,
        Query(description="A folder output's file, by its path inside the folder (as listed)"),
    ] = None,
) -> Response:
    job = services.store.get_for_user(job_id, user)
    outputs = _recorded(services, job)
    output = next((o for o in outputs if o.name == dataset), None)
    if output is None:
        raise _unknown(job, dataset, outputs)
    uri = output.uri
    if parse_s3_uri(uri):
        return _from_s3(output, job, file, services)
    if os.path.isabs(uri):
        return _from_local(output, job, file, request, services)
    raise HTTPException(
        404, f"Output {dataset!r} is at {uri}, which this API cannot serve (S3 or local only)"
    )


def _no_file(output: OutputInfo, file: str) -> HTTPException:
    return HTTPException(
        404, f"Output {output.name!r} has no file {file!r}; GET it without ?file= for its files"
    )


def _listing(output: OutputInfo, files: list[FolderFile], truncated: bool) -> Response:
    listing = FolderListing(name=output.name, uri=output.uri, files=files, truncated=truncated)
    return JSONResponse(listing.model_dump(), headers={"Cache-Control": "no-store"})


def _redirect(url: str) -> Response:
    # The URL expires: nothing may keep the redirect longer than that.
    return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})


def _from_s3(output: OutputInfo, job: Job, file: str | None, services: Services) -> Response:
    artifacts, seconds = services.artifacts, services.settings.output_url_seconds
    uri = output.uri
    if file is None and output.files is None and artifacts.exists_at(uri):
        return _redirect(artifacts.presigned_get(uri, seconds))
    # A folder: its files, as S3 holds them now.
    found, truncated = artifacts.list_at(uri, FOLDER_FILES_SHOWN)
    if file is not None:
        if file not in {path for path, _ in found}:
            raise _no_file(output, file)
        return _redirect(artifacts.presigned_get(f"{uri.rstrip('/')}/{file}", seconds))
    if not found:
        raise HTTPException(404, f"Output {output.name!r} is no longer at {uri}")
    files = [
        FolderFile(
            path=path, size=size, url=artifacts.presigned_get(f"{uri.rstrip('/')}/{path}", seconds)
        )
        for path, size in found
    ]
    return _listing(output, files, truncated)


def _from_local(
    output: OutputInfo, job: Job, file: str | None, request: Request, services: Services
) -> Response:
    path = Path(output.uri)  # exactly the recorded location; nothing from the request
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file())
        listed = {p.relative_to(path).as_posix(): p for p in found}
        if file is not None:
            # Only a file listed under the recorded folder: the query is looked up, never
            # joined into a path.
            chosen = listed.get(file)
            if chosen is None or chosen.is_symlink():
                raise _no_file(output, file)
            return FileResponse(chosen, media_type="application/octet-stream", filename=chosen.name)
        files = [
            FolderFile(
                path=relative,
                size=item.stat().st_size,
                url=_api_url(request, services, job.id, output.name, relative),
            )
            for relative, item in list(listed.items())[:FOLDER_FILES_SHOWN]
        ]
        return _listing(output, files, len(listed) > FOLDER_FILES_SHOWN)
    if file is not None:
        raise _no_file(output, file)
    if not path.is_file():
        raise HTTPException(404, f"Output {output.name!r} is no longer at {output.uri}")
    return FileResponse(path, media_type="application/octet-stream", filename=path.name)
