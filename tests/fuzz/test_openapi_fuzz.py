"""Schemathesis against the app's own OpenAPI schema, bounded: no 5xx, and no response that
breaks the schema (undocumented status codes, wrong content type, body not matching)."""

from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from kedro_jobs.api.app import create_app
from kedro_jobs.api.cross_site import CLIENT_HEADER
from kedro_jobs.api.services import Services
from kedro_jobs.core.requests import MAX_JOB_SECONDS_ASKED
from kedro_jobs.core.settings import get_settings
from kedro_jobs_local.resources import LocalResources

app = create_app()
# An oversized body is refused with 413 before it is parsed: a rejection like 422.
REJECTED = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
config = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REJECTED}}}
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


@pytest.fixture(autouse=True)
def _services(clean_stack: LocalResources) -> None:
    # An empty bucket: no pipeline manifest from an earlier test, so any pipeline name that
    # fits the schema is accepted (a manifest would make a valid name a 422).
    # A deployment that offers all the schema allows: Fargate, and no lower time limit than
    # a request may ask for (else a valid request is a 422 by deployment, not by schema).
    offered = {"fargate_cluster": "fuzz", "max_job_seconds": MAX_JOB_SECONDS_ASKED}
    app.state.services = Services(get_settings().model_copy(update=offered))


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    if case.headers and "Idempotency-Key" in case.headers:
        # Generated keys repeat ("0", "00"...), and a key reused with another body is a 422
        # by contract (tests/integration/test_api_handler.py): keep each case's key its own.
        case.headers["Idempotency-Key"] = f"{case.headers['Idempotency-Key'][:200]}-{uuid.uuid4()}"
    # As the web page and the CLI do: a change with no JSON body carries this header, else it
    # is refused as a cross-site request could be (415, tests/integration/test_api_handler.py).
    case.headers = {**(case.headers or {}), CLIENT_HEADER: "fuzz"}
    if case.query and "cursor" in case.query:
        # A cursor is opaque: any string fits the schema, and only ours are valid (a bad one
        # is a 422, tests/integration/test_store.py). Fuzz the other parameters.
        del case.query["cursor"]
    if isinstance(case.body, dict) and "/schedules" in case.path:
        # A schedule's expression and time zone have grammars JSON Schema cannot state (any
        # string fits it; tests/unit/test_schedule_times.py covers them): fuzz the rest.
        # Only values the schema allows are replaced: a negative case keeps what it breaks.
        for field, valid, longest in (("expression", "rate(1 hour)", 256), ("timezone", "UTC", 50)):
            value = case.body.get(field)
            if isinstance(value, str) and 0 < len(value) <= longest:
                case.body[field] = valid
    case.call_and_validate()
