"""Time budget of one invocation, from the Lambda context (or a stand-in locally)."""

from __future__ import annotations

import time
from typing import Any, Protocol


class HasRemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


class LocalContext:
    """What the local poller passes as the Lambda context: the function's timeout from the
    template, counted from the start of the invocation."""

    def __init__(self, timeout_seconds: float, function_name: str = "ConsumerFunction") -> None:
        self._deadline = time.monotonic() + timeout_seconds
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function_name}"
        self.memory_limit_in_mb = 2048
        self.aws_request_id = f"local-{time.time_ns()}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def remaining_seconds(context: Any, fallback: float) -> float:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    return getter() / 1000.0 if callable(getter) else fallback
