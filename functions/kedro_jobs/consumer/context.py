"""Time budget of one invocation, from the Lambda context (or a stand-in locally)."""

from __future__ import annotations

from typing import Any


def remaining_seconds(context: Any, fallback: float) -> float:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    return getter() / 1000.0 if callable(getter) else fallback
