"""Who is calling: taken from the API Gateway authorizer in the Lambda event, never from
the request body.

With an authorizer configured (``AUTH_REQUIRED``, which the template sets from JwtIssuer) a
request from which no identity can be derived is refused (401), never "anonymous"; without
one, such a request is "anonymous". A token's ``sub`` is its caller; a token without ``sub``
but with ``client_id`` (OAuth client credentials: a machine client) is ``client:<client_id>``.
"anonymous" and anything starting with ``client:`` are never accepted from an authorizer
(403), so no caller can pass as the shared anonymous owner or as a machine client.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request

from kedro_jobs.api.app_models import ErrorBody
from kedro_jobs.api.services import get_services
from kedro_jobs.names import ANONYMOUS as ANONYMOUS
from kedro_jobs.names import CLIENT_PREFIX, reserved_user

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No caller identity in the authorized request"},
    403: {"model": ErrorBody, "description": "The caller's identity is a reserved name"},
}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _get(data: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


# (a name, whether it is a machine client's id rather than a subject)
_Found = tuple[str, bool]


def _subject(value: Any) -> _Found | None:
    text = _text(value)
    return (text, False) if text else None


def _from_claims(claims: Any) -> _Found | None:
    """A JWT's caller: its ``sub``, else (a client-credentials token) its ``client_id``."""
    found = _subject(_get(claims, "sub"))
    if found is None and (client_id := _text(_get(claims, "client_id"))):
        found = (client_id, True)
    return found


def _derive(event: dict[str, Any] | None) -> _Found | None:
    context = _get(event, "requestContext") or {}
    authorizer = _get(context, "authorizer") or {}
    lambda_context = _get(authorizer, "lambda")
    found = (
        # HTTP API (v2): JWT authorizer, Lambda authorizer, IAM.
        _from_claims(_get(authorizer, "jwt", "claims")),
        _subject(_get(lambda_context, "principalId")),
        _subject(_get(lambda_context, "sub")),
        _subject(_get(authorizer, "iam", "userArn")),
        # REST API (v1): Cognito user pool, Lambda authorizer principal, IAM caller.
        _from_claims(_get(authorizer, "claims")),
        _subject(_get(authorizer, "principalId")),
        _subject(_get(context, "identity", "userArn")),
    )
    return next((each for each in found if each is not None), None)


def user_from_event(event: dict[str, Any] | None, *, required: bool = False) -> str:
    """The caller's user id. ``required`` (an authorizer is configured): no identity is 401.
    A reserved name from an authorizer is 403 either way."""
    found = _derive(event)
    if found is None:
        if required:
            raise HTTPException(
                401,
                "The request carries no caller identity (a token's `sub`, or `client_id` for "
                "a machine client; a Lambda authorizer's principalId; an IAM caller)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return ANONYMOUS
    name, is_client = found
    if is_client:
        return f"{CLIENT_PREFIX}{name}"
    if reserved_user(name):
        raise HTTPException(403, f"The caller identity {name[:64]!r} is a reserved name")
    return name


def current_user(request: Request) -> str:
    required = get_services(request).settings.auth_required
    return user_from_event(request.scope.get("aws.event"), required=required)
