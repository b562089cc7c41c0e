"""Jobs made straight in the store, as the API would make them, with the queue message the
consumer would receive for each."""

from __future__ import annotations

from typing import Any

from kedro_jobs.core.models import Job
from kedro_jobs.core.store import ApiJobs


def submitted(store: ApiJobs, pipeline: str, **params: Any) -> tuple[Job, str]:
    """A pending job of ``pipeline`` with ``params`` (user "u"), and its message body."""
    job = store.create(Job.new(pipeline_name=pipeline, parameters=params, options={}, user_id="u"))
    return job, job.to_message().model_dump_json(exclude_none=True)
