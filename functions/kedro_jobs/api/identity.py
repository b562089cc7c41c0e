"""Who is calling: taken from the API Gateway authorizer in the Lambda event, never from
the request body. No authorizer (or a local server) means "anonymous"."""

from __future__ import annotations

from typing import Any

from fastapi import Request

ANONYMOUS = "anonymous"


def _first(*candidates: Any) -> str | None:
    for value in candidates:
        if isinstance(value, str) and value:
            return value
    return None


def _get(data: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def user_from_event(event: dict[str, Any] | None) -> str:
    context = _get(event, "requestContext") or {}
    authorizer = _get(context, "authorizer") or {}
    return (
        _first(
            # HTTP API (v2): JWT authorizer, Lambda authorizer, IAM.
            _get(authorizer, "jwt", "claims", "sub"),
            _get(authorizer, "lambda", "principalId"),
            _get(authorizer, "lambda", "sub"),
            _get(authorizer, "iam", "userArn"),
            # REST API (v1): Cognito user pool, Lambda authorizer principal, IAM caller.
            _get(authorizer, "claims", "sub"),
            _get(authorizer, "principalId"),
            _get(context, "identity", "userArn"),
        )
        or ANONYMOUS
    )


def current_user(request: Request) -> str:
    return user_from_event(request.scope.get("aws.event"))
