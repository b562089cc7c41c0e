"""X-Ray tracing around a Lambda handler, only when it is on.

Tracing is opt-in (the template's ``Tracing`` parameter): X-Ray bills $5 per million traces,
a quarter of a trivial job's whole cost, and importing its SDK adds ~50 ms to each cold start
in Lambda (~0.2 s elsewhere, where its sampler builds an xray client). Off, the SDK is never
imported; on, Powertools' Tracer wraps the handler as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from kedro_jobs.core.settings import get_settings

Handler = TypeVar("Handler", bound=Callable[..., Any])


def traced(service: str) -> Callable[[Handler], Handler]:
    """Powertools' ``capture_lambda_handler`` when tracing is on; else the handler as is."""
    if not get_settings().tracing:
        return lambda handler: handler
    from aws_lambda_powertools import Tracer

    capture: Callable[[Handler], Handler] = Tracer(service=service).capture_lambda_handler(
        capture_response=False
    )
    return capture
