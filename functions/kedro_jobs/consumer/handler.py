"""The consumer Lambda entry point: an SQS batch with partial batch responses, each record
through :class:`~kedro_jobs.consumer.delivery.Consumer`.

Only the Powertools objects are made at import; the Kedro project is bootstrapped and the
AWS clients are created on the first invocation, once per container; the pipeline manifest
is published after that invocation's batch.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from kedro_jobs.consumer.delivery import Consumer
from kedro_jobs.core.artifacts import ArtifactStore
from kedro_jobs.core.batch import process_batch
from kedro_jobs.core.compute import launchers_from_settings
from kedro_jobs.core.events import flush
from kedro_jobs.core.settings import get_settings
from kedro_jobs.core.store.roles.run import RunJobs
from kedro_jobs.core.tracing import traced

logger = Logger(service="kedro-jobs-consumer")
# Kedro's logging config gives the root logger a console handler: without this, every record
# would be written twice (once as JSON, once as plain text), and billed twice in CloudWatch.
logging.getLogger(logger.name).propagate = False
metrics = Metrics(namespace="KedroJobs", service="kedro-jobs-consumer")


def _make_runner() -> Any:
    from kedro_jobs.runner.project import project_path_from_env
    from kedro_jobs.runner.runner import KedroRunner

    settings = get_settings()
    return KedroRunner(
        project_path_from_env(),
        isolation=settings.isolation,  # type: ignore[arg-type]
        data_root=settings.jobs_data_root,
        staging_dir=settings.staging_dir,
        checkpoint_key=settings.signing_key.get_secret_value(),
    )


@cache
def consumer() -> Consumer:
    settings = get_settings()
    return Consumer(
        settings,
        # A job's events go out in the background, never ahead of its run or its final
        # write; each invocation flushes them before it returns (Lambda freezes after).
        store=RunJobs.from_settings(settings, events_in_background=True),
        artifacts=ArtifactStore(settings.artifacts_bucket),
        runner_factory=_make_runner,
        metrics=metrics,
        launchers=launchers_from_settings(settings),
    )


def flush_events() -> None:
    """Send the job events still queued, before the function returns (Lambda freezes a
    container after it returns)."""
    if consumer.cache_info().currsize:  # nothing to send if no consumer was made
        flush(consumer().store.events)


def record_handler(record: SQSRecord, lambda_context: Any = None) -> None:
    consumer().handle(
        record.body,
        record.message_id,
        receipt_handle=record.receipt_handle,
        receive_count=int(record.attributes.approximate_receive_count or 1),
        context=lambda_context,
    )


@metrics.log_metrics
@traced("kedro-jobs-consumer")
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        response = process_batch(event, context, record_handler)
        consumer().publish_manifest_once()
    finally:
        flush_events()
    # After the batch's records are recorded and its events sent: off every job's path.
    consumer().fork_ahead()
    return response
