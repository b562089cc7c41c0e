"""A stand-in for the Lambda context object, for calling a function's handler off Lambda: the
local pollers and sweeper, the tests and the benchmarks."""

from __future__ import annotations

import time


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
