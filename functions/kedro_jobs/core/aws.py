"""Lazily created, per-container AWS clients, and one translation of their failures.

boto3 honours AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> itself, so nothing here knows
whether it talks to moto, LocalStack or AWS.
"""

from __future__ import annotations

from functools import cache
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from kedro_jobs.core.errors import DependencyUnavailable

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=3,
    read_timeout=10,
)


@cache
def client(service: str) -> Any:
    """One client per service per container; created on first use, never at import."""
    return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]


class aws_errors:
    """Turn botocore failures into DependencyUnavailable, naming the dependency.

    Callers handle expected client errors (a failed condition) inside the block first.
    """

    def __init__(self, dependency: str) -> None:
        self.dependency = dependency

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, ClientError):
            raise DependencyUnavailable(self.dependency, f"{error_code(exc)}: {exc}") from exc
        if isinstance(exc, BotoCoreError):
            raise DependencyUnavailable(self.dependency, str(exc)) from exc


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
