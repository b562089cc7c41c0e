"""The API function's Powertools Logger and Metrics (one of each per container)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

SERVICE = "kedro-jobs-api"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="KedroJobs", service=SERVICE)
