"""The sweeper Lambda entry point, run on a schedule (template.yaml: every minute)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger

from kedro_jobs.core.queue import JobQueue
from kedro_jobs.core.settings import get_settings
from kedro_jobs.core.store.roles.sweep import SweepJobs
from kedro_jobs.sweeper.sweep import Sweeper

logger = Logger(service="kedro-jobs-sweeper")


@cache
def sweeper() -> Sweeper:
    settings = get_settings()
    return Sweeper(
        settings,
        store=SweepJobs.from_settings(settings),
        queue=JobQueue(settings.jobs_queue_url),
    )


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return sweeper().sweep().as_dict()
