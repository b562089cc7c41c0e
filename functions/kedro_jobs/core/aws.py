"""Lazily created, per-container AWS clients, and one translation of their failures.

boto3 honours AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> itself, so nothing here knows
whether it talks to moto, LocalStack or AWS.

Retryable or not is the AWS SDKs' own rule (botocore's standard retry mode, which has already
tried each call three times by then): throttling, a 5xx, a request timeout or a connection
that failed or timed out may pass later (DependencyUnavailable); any other error, a 4xx such
as AccessDenied, ValidationException or an unexpected ConditionalCheckFailed, meets the same
answer again (DependencyRefused).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.retries.standard import (
    RetryContext,
    ThrottledRetryableChecker,
    TransientRetryableChecker,
)

from kedro_jobs.core.errors import DependencyRefused, DependencyUnavailable

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=3,
    read_timeout=10,
)


_CLIENTS_LOCK = threading.Lock()


def client(service: str) -> Any:
    """One client per service per container; created on first use, never at import."""
    # A boto3 session is not thread-safe (the API's routes run on a thread pool); its
    # clients are.
    with _CLIENTS_LOCK:
        return _client(service)


@cache
def _session() -> boto3.session.Session:
    """All of a container's clients come from one session: a session keeps the service
    models and endpoint rules it has read, and one per client read them again (~60 ms of CPU
    a client, 3-5 clients a process)."""
    return boto3.session.Session()


@cache
def _client(service: str) -> Any:
    return _session().client(service, config=_CONFIG)  # type: ignore[call-overload]


class aws_errors:
    """Turn botocore failures into DependencyUnavailable (retryable) or DependencyRefused (not),
    naming the dependency.

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
        if isinstance(exc, ClientError | BotoCoreError):
            reason = f"{error_code(exc)}: {exc}" if isinstance(exc, ClientError) else str(exc)
            error = DependencyUnavailable if retryable(exc) else DependencyRefused
            raise error(self.dependency, reason) from exc


@dataclass(frozen=True)
class _Status:
    status_code: int


_CHECKERS = (ThrottledRetryableChecker(), TransientRetryableChecker())


def retryable(exc: Exception) -> bool:
    """Throttling, a 5xx, a request timeout, a connection error: as botocore's standard retry
    mode decides (its own lists of codes and exception classes)."""
    response = getattr(exc, "response", None)
    status = (response or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    context = RetryContext(
        attempt_number=1,
        parsed_response=response,
        http_response=_Status(int(status)) if status else None,
        caught_exception=None if response is not None else exc,
    )
    return any(checker.is_retryable(context) for checker in _CHECKERS)


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
