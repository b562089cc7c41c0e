"""The package rules of DESIGN.md, checked in a fresh interpreter: the API function never
imports Kedro, the core imports neither FastAPI nor Kedro, and no module creates an AWS
client at import time."""

from __future__ import annotations

import pytest

from tests.support.fresh_interpreter import import_in_fresh_interpreter, top_level


def test_api_handler_does_not_import_kedro_or_create_clients() -> None:
    result = import_in_fresh_interpreter("kedro_jobs.api.handler")
    assert not {"kedro", "kedro_datasets", "pandas"} & top_level(result["modules"])
    assert not any(m.startswith("kedro_jobs.consumer") for m in result["modules"])
    assert result["clients"] == []


@pytest.mark.parametrize(
    "module",
    [
        "kedro_jobs.core.models",
        "kedro_jobs.core.requests",
        "kedro_jobs.core.store",
        "kedro_jobs.core.queue",
        "kedro_jobs.core.artifacts",
        "kedro_jobs.core.manifest",
        "kedro_jobs.core.jobs",
        "kedro_jobs.core.settings",
    ],
)
def test_core_imports_neither_fastapi_nor_kedro(module: str) -> None:
    result = import_in_fresh_interpreter(module)
    assert not {"fastapi", "starlette", "mangum", "kedro"} & top_level(result["modules"])
    assert result["clients"] == []


def test_consumer_handlers_create_no_client_at_import() -> None:
    result = import_in_fresh_interpreter(
        "kedro_jobs.consumer.handler", "kedro_jobs.dead_letters.handler"
    )
    assert result["clients"] == []


@pytest.mark.parametrize("handler", ["kedro_jobs.api.handler", "kedro_jobs.consumer.handler"])
@pytest.mark.parametrize(
    ("env", "traced"),
    [
        ({}, False),  # not in Lambda: no X-Ray daemon to send to
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}, True),
    ],
    ids=["local", "lambda-tracing-off", "lambda-tracing-on"],
)
def test_the_xray_sdk_is_loaded_only_when_tracing_is_on(
    handler: str, env: dict[str, str], traced: bool
) -> None:
    # The template's Tracing parameter sets POWERTOOLS_TRACE_DISABLED. Off, the SDK (~50 ms
    # of a cold start in Lambda) is never imported.
    result = import_in_fresh_interpreter(handler, **env)
    assert ("aws_xray_sdk" in top_level(result["modules"])) is traced
    assert [c for c in result["clients"] if c != "xray"] == []
