"""The package rules of DESIGN.md, checked in a fresh interpreter: the API function never
imports Kedro, the core imports neither FastAPI nor Kedro, and no module creates an AWS
client at import time."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_PROBE = """
import json, sys
import botocore.client
created = []
original = botocore.client.ClientCreator.create_client
def spy(self, service_name, *a, **k):
    created.append(service_name)
    return original(self, service_name, *a, **k)
botocore.client.ClientCreator.create_client = spy
import importlib
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps({"modules": sorted(sys.modules), "clients": created}))
"""


def _import_in_fresh_interpreter(*modules: str) -> dict[str, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *modules],
        check=True,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},
    )
    result: dict[str, list[str]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _ours(clients: list[str]) -> list[str]:
    # Powertools' Tracer brings the X-Ray SDK, whose sampler makes its own xray client.
    return [c for c in clients if c != "xray"]


def _top_level(modules: list[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_api_handler_does_not_import_kedro_or_create_clients() -> None:
    result = _import_in_fresh_interpreter("kedro_jobs.api.handler")
    assert not {"kedro", "kedro_datasets", "pandas"} & _top_level(result["modules"])
    assert not any(m.startswith("kedro_jobs.consumer") for m in result["modules"])
    assert _ours(result["clients"]) == []


@pytest.mark.parametrize(
    "module",
    [
        "kedro_jobs.core.models",
        "kedro_jobs.core.store",
        "kedro_jobs.core.queue",
        "kedro_jobs.core.artifacts",
        "kedro_jobs.core.manifest",
        "kedro_jobs.core.submission",
        "kedro_jobs.core.settings",
    ],
)
def test_core_imports_neither_fastapi_nor_kedro(module: str) -> None:
    result = _import_in_fresh_interpreter(module)
    assert not {"fastapi", "starlette", "mangum", "kedro"} & _top_level(result["modules"])
    assert _ours(result["clients"]) == []


def test_consumer_handlers_create_no_client_at_import() -> None:
    result = _import_in_fresh_interpreter(
        "kedro_jobs.consumer.handler", "kedro_jobs.consumer.dlq_handler"
    )
    assert _ours(result["clients"]) == []
