"""A project that cannot load (a package missing from the image) fails its jobs at once with
the real error, burns no delivery, and the pipelines route says why it lists nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import kedro_jobs.consumer.handler as consumer_handler
from kedro_jobs.core.models import Job
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ApiJobs
from kedro_jobs_local.counting_project import write_project
from kedro_jobs_local.lambda_events import sqs_event

from .conftest import ApiCall

from kedro_jobs_local.lambda_context import LocalContext  # isort: skip


@pytest.fixture
def broken_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_functions: Callable[[], None]
) -> Path:
    project = write_project(tmp_path / "broken", package="broken_project")
    registry = project / "src" / "broken_project" / "pipeline_registry.py"
    registry.write_text("import sklearn_that_is_not_installed\n" + registry.read_text())
    monkeypatch.setenv("KEDRO_PROJECT_PATH", str(project))
    fresh_functions()
    return project


def test_jobs_of_a_project_that_cannot_load_fail_at_once_with_its_error(
    broken_project: Path, api_call: ApiCall, store: ApiJobs
) -> None:
    jobs = [
        store.create(Job.new(pipeline_name="two_nodes", parameters={}, options={}, user_id="u"))
        for _ in range(2)
    ]
    bodies = [job.to_message().model_dump_json(exclude_none=True) for job in jobs]
    response = consumer_handler.handler(sqs_event(*bodies), LocalContext(30))
    assert response == {"batchItemFailures": []}  # nothing to deliver again
    expected = (
        "The Kedro project could not be loaded: ModuleNotFoundError: "
        "No module named 'sklearn_that_is_not_installed'"
    )
    for job in jobs:
        stored = store.get(job.id)
        assert stored is not None and stored.status is JobStatus.FAILED
        assert stored.error_message == expected and stored.attempts == 1
    status, body, _ = api_call("GET", "/api/v1/pipelines")
    assert (status, body) == (503, {"detail": expected})
    # Submitting still works (the job then fails at once, saying why).
    status, body, _ = api_call("POST", "/api/v1/jobs", body={"pipeline_name": "two_nodes"})
    assert status == 202, body
