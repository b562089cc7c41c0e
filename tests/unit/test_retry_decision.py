"""Retry or not, decided in one place: what comes back soon, and what is left alone."""

from __future__ import annotations

import pytest

from kedro_jobs.consumer.delivery import (
    RETRY_MAX_SECONDS,
    OutOfTime,
    PoisonMessage,
    retry_delay,
)
from kedro_jobs.core.errors import DependencyUnavailable


@pytest.mark.parametrize(
    "error", [DependencyUnavailable("DynamoDB", "ThrottlingException"), OutOfTime("2 s left")]
)
def test_a_retryable_failure_comes_back_within_a_minute_backing_off(error: Exception) -> None:
    delays = [retry_delay(error, receives) for receives in range(1, 9)]
    assert all(d is not None and 1 <= d <= RETRY_MAX_SECONDS for d in delays)
    assert delays[0] is not None and delays[0] <= 5  # the first retry within seconds
    assert min(d for d in delays[4:] if d is not None) >= RETRY_MAX_SECONDS // 2  # backed off


@pytest.mark.parametrize("error", [ValueError("bug"), PoisonMessage("not JSON")])
def test_anything_else_is_left_to_the_queue(error: Exception) -> None:
    assert retry_delay(error, 1) is None
