"""The dependencies the routes declare, as `Annotated` aliases: one definition each."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from kedro_jobs.api.identity import current_user
from kedro_jobs.api.services import Services, get_services
from kedro_jobs.core.errors import JobNotFound
from kedro_jobs.names import JOB_ID


def _job_id(job_id: str) -> str:
    """An id of a shape no job has cannot exist: 404 without asking DynamoDB."""
    if not JOB_ID.match(job_id):
        raise JobNotFound(job_id[:64])
    return job_id


# The caller (api/identity.py), the container's services, and a `{job_id}` path parameter.
User = Annotated[str, Depends(current_user)]
Deps = Annotated[Services, Depends(get_services)]
JobId = Annotated[str, Depends(_job_id)]
