"""The dead-letter function's entry point: a job whose message was dead-lettered is failed
with the reason, so no job waits forever for a message that is gone."""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from kedro_jobs.core.batch import process_batch
from kedro_jobs.core.errors import JobNotFound
from kedro_jobs.core.fanout import Coordinator, coordinator_from_settings, parse_task
from kedro_jobs.core.liveness import held
from kedro_jobs.core.messages import BadMessage, may_change, parse_body
from kedro_jobs.core.queue import REASON_ATTRIBUTE
from kedro_jobs.core.settings import get_settings
from kedro_jobs.core.store.roles.sweep import SweepJobs
from kedro_jobs.dead_letters.fan_out import dead_fan_out_task

logger = Logger(service="kedro-jobs-dlq")


class JobStillRunning(Exception):
    """The job runs under a live lease: look again when the record comes back."""


@cache
def store() -> SweepJobs:
    settings = get_settings()
    return SweepJobs.from_settings(settings)


@cache
def coordinator() -> Coordinator | None:
    return coordinator_from_settings(get_settings())


def dead_letter(record: SQSRecord, jobs: SweepJobs, fan_out: Coordinator | None = None) -> None:
    receives = record.attributes.approximate_receive_count
    task = parse_task(record.body) if fan_out is not None else None
    if task is not None and fan_out is not None:  # a message of a fan-out execution
        # The count goes on across queues: this function's own receive is the last.
        dead_fan_out_task(task, max(1, int(receives) - 1), jobs, fan_out)
        return
    parsed = parse_body(record.body)
    if isinstance(parsed, BadMessage):
        job_id, why, sender = parsed.job_id, parsed.reason, parsed.user_id
    else:
        job_id, why = parsed.derived_job_id(record.message_id), "it was not processed"
        sender = parsed.user_id
    # The consumer's own reason, when it put the message here itself: it has already done
    # what the message allowed (failed the job, or left it alone), so it is recorded here and
    # dropped.
    attributes = record.raw_event.get("messageAttributes") or {}
    said = (attributes.get(REASON_ATTRIBUTE) or {}).get("stringValue")
    if job_id is None or said:
        logger.error(
            "dead-lettered message; dropped",
            extra={"reason": said or why, "message_id": record.message_id, "job_id": job_id},
        )
        return
    message = (
        f"Job failed: its queue message was dead-lettered after {receives} receive(s) "
        f"({why}). Check the consumer's logs, then retry the job."
    )
    try:
        job = jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        if job.status.terminal:
            return
        if not may_change(job, sender):
            logger.error(
                "dead-lettered message names another user's job; dropped",
                extra={"job_id": job_id, "reason": why},
            )
            return
        if held(job, time.time()):
            raise JobStillRunning(job_id)
        if jobs.fail(job_id, message, only_if_lease_expired=True) is None:
            fresh = jobs.get(job_id)
            if fresh is not None and not fresh.status.terminal:
                raise JobStillRunning(job_id)
    except JobNotFound:
        logger.error("dead-lettered message for an unknown job", extra={"job_id": job_id})
        return
    logger.warning("job failed from the dead-letter queue", extra={"job_id": job_id})


def record_handler(record: SQSRecord) -> None:
    dead_letter(record, store(), coordinator())


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_batch(event, context, record_handler)
