"""The Lambda entry point: Mangum once at module scope, under Powertools' Logger and Metrics
(and Tracer, when tracing is on). Nothing here creates an AWS client: that happens on the
first request."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from mangum import Mangum

from kedro_jobs.api.app import create_app
from kedro_jobs.api.telemetry import SERVICE, logger, metrics
from kedro_jobs.core.tracing import traced

app = create_app()
asgi = Mangum(app, lifespan="off")


@metrics.log_metrics
@traced(SERVICE)
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = asgi(event, context)
    return response
