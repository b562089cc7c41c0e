"""The sample events in infra/events/ (for `sam local invoke -e`) through the handlers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from kedro_jobs.api import handler as api_handler
from kedro_jobs.api.services import Services
from kedro_jobs.consumer import handler as consumer_handler
from kedro_jobs.core.models import Job
from kedro_jobs.core.settings import get_settings
from kedro_jobs.core.states import JobStatus
from kedro_jobs.dead_letters import handler as dlq_handler
from kedro_jobs_local.lambda_context import LocalContext
from kedro_jobs_local.lambda_events import response_json
from kedro_jobs_local.resources import LocalResources

from .conftest import ROOT


def _event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "infra" / "events" / name).read_text())
    return data


@pytest.fixture
def fresh(
    clean_stack: LocalResources,
    monkeypatch: pytest.MonkeyPatch,
    fresh_functions: Callable[[], None],
) -> Services:
    """A fresh container (clean_stack's) on the bundled example project, the API served."""
    monkeypatch.delenv("KEDRO_PROJECT_PATH", raising=False)  # the bundled example project
    fresh_functions()
    services = Services(get_settings())
    api_handler.app.state.services = services
    return services


def test_api_events(fresh: Services) -> None:
    submitted = api_handler.handler(_event("api_submit_job.json"), LocalContext(29, "ApiFunction"))
    assert submitted["statusCode"] == 202
    job = response_json(submitted)
    assert job["pipeline_name"] == "data_loading" and job["status"] == "pending"
    listed = response_json(
        api_handler.handler(_event("api_list_jobs.json"), LocalContext(29, "ApiFunction"))
    )
    assert [j["id"] for j in listed["jobs"]] == [job["id"]]
    health = api_handler.handler(_event("api_health.json"), LocalContext(29, "ApiFunction"))
    assert health["statusCode"] == 200


def test_consumer_event_runs_the_example_pipeline(fresh: Services) -> None:
    result = consumer_handler.handler(_event("consumer_job_message.json"), LocalContext(60))
    assert result == {"batchItemFailures": []}
    [job] = fresh.store.list_jobs("anonymous").jobs
    assert job.status is JobStatus.COMPLETED and job.source == "sqs"
    assert job.results is not None and job.results["orders_summary"]["rows_generated"] == 200


def test_dead_letter_event_fails_the_waiting_job(fresh: Services) -> None:
    event = _event("dead_letter_message.json")
    job_id = json.loads(event["Records"][0]["body"])["job_id"]
    # The sample message names no user_id: its sender is "anonymous", whose job it may fail.
    fresh.store.create(
        Job.new(
            job_id=job_id,
            pipeline_name="data_loading",
            parameters={},
            options={},
            user_id="anonymous",
        )
    )
    assert dlq_handler.handler(event, LocalContext(30, "DeadLetterFunction")) == {
        "batchItemFailures": []
    }
    failed = fresh.store.get(job_id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert "dead-lettered after 5 receive(s)" in (failed.error_message or "")
