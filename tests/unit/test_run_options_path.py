"""Run options take one typed path: the request's model is the record's, the message's and
the runner's, and becomes Kedro's keyword arguments in one place (runner/session.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kedro_jobs.core.messages import parse_body
from kedro_jobs.core.models import Job
from kedro_jobs.core.queue import encode
from kedro_jobs.core.requests import JobMessage, JobRequest, RunOptions
from kedro_jobs.runner.session import run_arguments
from kedro_jobs.runner.types import RunRequest

ASKED = {
    "tags": ["t"],
    "namespaces": ["m"],
    "from_nodes": ["clean"],
    "load_versions": {"model": "2024-01-01T00.00.00.000Z"},
    "env": "staging",
    "fan_out": False,
}


def test_the_requests_options_reach_the_runner_as_they_were_asked() -> None:
    request = JobRequest.model_validate({"pipeline_name": "p", **ASKED})
    job = Job.new(pipeline_name="p", parameters={}, options=request.options, user_id="u")
    assert job.model_dump(mode="json")["options"] == ASKED  # the record: only those set
    message = parse_body(encode(job.to_message()))
    assert isinstance(message, JobMessage)
    again = Job.from_message(job.id, message, compute="lambda")
    assert again.options == request.options
    run = RunRequest(job.id, "p", {}, again.options)
    assert run.options.env == "staging" and run.options.fan_out is False
    assert run_arguments(run) == {
        "tags": ["t"],
        "namespaces": ["m"],
        "from_nodes": ["clean"],
        "load_versions": {"model": "2024-01-01T00.00.00.000Z"},
    }


def test_options_not_set_or_empty_are_kedros_defaults() -> None:
    assert run_arguments(RunRequest("j", "p", {}, RunOptions(tags=[]))) == {"load_versions": None}


def test_options_given_as_json_are_checked_as_a_requests_are() -> None:
    assert RunRequest("j", "p", {}, {"tags": ["a"]}).options == RunOptions(tags=["a"])  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        RunRequest("j", "p", {}, {"env": ".."})  # type: ignore[arg-type]
