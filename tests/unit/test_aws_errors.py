"""Which AWS failures are retried: the AWS SDKs' rule (throttling, 5xx, timeouts), not every
client error. A refused request (a 4xx) is not retried soon: it would meet the same answer."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from kedro_jobs.consumer.delivery import retry_delay
from kedro_jobs.core.aws import aws_errors
from kedro_jobs.core.errors import DependencyRefused, DependencyUnavailable


def _client_error(code: str, status: int) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "PutItem")  # type: ignore[arg-type]


def _name(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code") or type(error).__name__)


def _raised(error: Exception) -> DependencyUnavailable:
    with pytest.raises(DependencyUnavailable) as raised, aws_errors("DynamoDB"):
        raise error
    assert raised.value.dependency == "DynamoDB"
    return raised.value


@pytest.mark.parametrize(
    "error",
    [
        _client_error("ThrottlingException", 400),
        _client_error("ProvisionedThroughputExceededException", 400),
        _client_error("SlowDown", 503),
        _client_error("InternalServerError", 500),
        _client_error("ServiceUnavailable", 503),
        _client_error("RequestTimeout", 408),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"),
        ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
    ],
    ids=_name,
)
def test_throttling_5xx_and_timeouts_are_retried_soon(error: Exception) -> None:
    unavailable = _raised(error)
    assert not isinstance(unavailable, DependencyRefused)
    assert retry_delay(unavailable, 1) is not None
    assert "unavailable" in str(unavailable)


@pytest.mark.parametrize(
    "error",
    [
        _client_error("ConditionalCheckFailedException", 400),
        _client_error("AccessDeniedException", 400),
        _client_error("AccessDenied", 403),
        _client_error("ValidationException", 400),
        _client_error("ResourceNotFoundException", 400),
        NoCredentialsError(),
    ],
    ids=_name,
)
def test_a_refused_request_is_not_retried_soon(error: Exception) -> None:
    refused = _raised(error)
    assert isinstance(refused, DependencyRefused)
    assert retry_delay(refused, 1) is None  # the queue's own visibility timeout, then the DLQ
    assert "refused" in str(refused)


def test_other_errors_pass_through_unchanged() -> None:
    with pytest.raises(KeyError), aws_errors("S3"):
        raise KeyError("not botocore's")
