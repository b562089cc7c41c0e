"""Identity fails closed (issue 11): with an authorizer configured, a request from which no
caller can be derived is refused, never "anonymous"; machine clients are `client:<id>`."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import HTTPException

from kedro_jobs.api.identity import ANONYMOUS, user_from_event
from kedro_jobs.core.settings import Settings
from kedro_jobs_local.lambda_events import http_api_event, rest_api_event
from kedro_jobs_local.template import load_template, resolve_value


def _jwt(claims: dict[str, str]) -> dict[str, Any]:
    return http_api_event("GET", "/api/v1/jobs", claims=claims)


def _authorizer(event: dict[str, Any], authorizer: dict[str, Any]) -> dict[str, Any]:
    event["requestContext"]["authorizer"] = authorizer
    return event


NO_IDENTITY = {
    "jwt-without-sub": _jwt({"scope": "jobs/read"}),
    "jwt-sub-empty": _jwt({"sub": ""}),
    "jwt-client-id-empty": _jwt({"client_id": ""}),
    "http-lambda-authorizer-without-principal": _authorizer(
        http_api_event("GET", "/api/v1/jobs"), {"lambda": {"tenant": "acme"}}
    ),
    "rest-lambda-authorizer-without-principal": _authorizer(
        rest_api_event("GET", "/api/v1/jobs"), {"tenant": "acme"}
    ),
    "rest-cognito-without-sub": _authorizer(
        rest_api_event("GET", "/api/v1/jobs"), {"claims": {"email": "a@example.com"}}
    ),
    "no-event": None,  # a local server with the setting on
}


@pytest.mark.parametrize("event", NO_IDENTITY.values(), ids=NO_IDENTITY.keys())
def test_no_identity_is_401_when_an_authorizer_is_configured(event: dict[str, Any] | None) -> None:
    with pytest.raises(HTTPException) as refused:
        user_from_event(event, required=True)
    assert refused.value.status_code == 401
    assert "no caller identity" in refused.value.detail
    assert (refused.value.headers or {}).get("WWW-Authenticate") == "Bearer"
    # Without an authorizer, the same request is the shared anonymous caller, as before.
    assert user_from_event(event, required=False) == ANONYMOUS


RESERVED = {
    "jwt-sub-anonymous": _jwt({"sub": "anonymous"}),
    "jwt-sub-posing-as-a-client": _jwt({"sub": "client:etl"}),
    "lambda-principal-anonymous": rest_api_event("GET", "/api/v1/jobs", principal="anonymous"),
    "lambda-principal-posing-as-a-client": _authorizer(
        http_api_event("GET", "/api/v1/jobs"), {"lambda": {"principalId": "client:etl"}}
    ),
}


@pytest.mark.parametrize("event", RESERVED.values(), ids=RESERVED.keys())
@pytest.mark.parametrize("required", [True, False])
def test_reserved_names_are_403(event: dict[str, Any], required: bool) -> None:
    with pytest.raises(HTTPException) as refused:
        user_from_event(event, required=required)
    assert refused.value.status_code == 403
    assert "reserved" in refused.value.detail


def test_a_machine_client_is_its_client_id_in_a_namespace_of_its_own() -> None:
    assert user_from_event(_jwt({"client_id": "etl", "scope": "jobs/write"}), required=True) == (
        "client:etl"
    )
    cognito_rest = _authorizer(
        rest_api_event("GET", "/api/v1/jobs"), {"claims": {"client_id": "x"}}
    )
    assert user_from_event(cognito_rest, required=True) == "client:x"
    # A token with a subject is that subject, whatever client it was issued to.
    assert user_from_event(_jwt({"sub": "alice", "client_id": "web"}), required=True) == "alice"
    # A user whose sub equals a client's id is not that client.
    assert user_from_event(_jwt({"sub": "etl"}), required=True) == "etl"


def test_subjects_pass_as_before() -> None:
    assert user_from_event(_jwt({"sub": "alice"}), required=True) == "alice"
    principal = rest_api_event("GET", "/api/v1/jobs", principal="bob")
    assert user_from_event(principal, required=True) == "bob"
    iam = _authorizer(
        http_api_event("GET", "/api/v1/jobs"), {"iam": {"userArn": "arn:aws:iam::1:user/etl"}}
    )
    assert user_from_event(iam, required=True) == "arn:aws:iam::1:user/etl"


@pytest.mark.parametrize(("issuer", "required"), [("", False), ("https://idp.example", True)])
def test_the_template_turns_the_setting_on_with_the_jwt_authorizer(
    issuer: str, required: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = load_template()
    variables = template["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    overrides = {"JwtIssuer": issuer, "JwtAudience": "jobs" if issuer else ""}
    value = resolve_value(
        variables["AUTH_REQUIRED"], template=template, parameter_overrides=overrides
    )
    monkeypatch.setenv("AUTH_REQUIRED", str(value))
    assert Settings().auth_required is required
