"""Who the caller is, for each API Gateway event shape (from kedro_jobs_local/sample_events/)."""

from __future__ import annotations

from typing import Any

import pytest

from kedro_jobs.api.identity import ANONYMOUS, user_from_event
from kedro_jobs_local.lambda_events import http_api_event, rest_api_event


def _with_authorizer(event: dict[str, Any], authorizer: dict[str, Any]) -> dict[str, Any]:
    event["requestContext"]["authorizer"] = authorizer
    return event


@pytest.mark.parametrize(
    ("event", "user"),
    [
        (http_api_event("GET", "/api/v1/jobs", claims={"sub": "alice"}), "alice"),
        (http_api_event("GET", "/api/v1/jobs"), ANONYMOUS),  # the sample's claims: no sub
        (
            _with_authorizer(
                http_api_event("GET", "/api/v1/jobs"),
                {"iam": {"userArn": "arn:aws:iam::123456789012:user/etl"}},
            ),
            "arn:aws:iam::123456789012:user/etl",
        ),
        (
            _with_authorizer(http_api_event("GET", "/api/v1/jobs"), {"lambda": {"sub": "svc"}}),
            "svc",
        ),
        (rest_api_event("GET", "/api/v1/jobs", principal="bob"), "bob"),
        (
            _with_authorizer(rest_api_event("GET", "/api/v1/jobs"), {"claims": {"sub": "carol"}}),
            "carol",
        ),
        (rest_api_event("GET", "/api/v1/jobs"), ANONYMOUS),  # the sample: identity all null
        (None, ANONYMOUS),  # a local server: no Lambda event at all
    ],
)
def test_user_comes_from_the_authorizer(event: dict[str, Any] | None, user: str) -> None:
    assert user_from_event(event) == user


def test_rest_api_iam_caller() -> None:
    event = rest_api_event("GET", "/api/v1/jobs")
    event["requestContext"]["identity"]["userArn"] = "arn:aws:iam::123456789012:role/batch"
    assert user_from_event(event) == "arn:aws:iam::123456789012:role/batch"


def test_a_user_id_in_the_body_or_headers_is_ignored() -> None:
    event = http_api_event(
        "POST", "/api/v1/jobs", body={"user_id": "alice"}, headers={"X-User-Id": "alice"}
    )
    assert user_from_event(event) == ANONYMOUS
