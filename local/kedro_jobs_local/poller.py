"""What Lambda's SQS event source mapping does, locally: long-poll the queue, hand the
consumer handler a real SQS event batch, delete the records it did not report as failed.
Reported records stay on the queue and come back after the visibility timeout, exactly as
with `ReportBatchItemFailures` on AWS."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from kedro_jobs.consumer.context import LocalContext

logger = logging.getLogger("kedro_jobs_local.poller")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class PollerConfig:
    queue_url: str
    queue_arn: str
    batch_size: int = 1
    function_timeout: float = 900.0
    wait_seconds: int = 1
    function_name: str = "ConsumerFunction"
    # Called once before polling, like Lambda's init phase (bootstrap Kedro, publish manifest).
    warm_up: str | None = None


def to_lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One received SQS message in the shape Lambda delivers it."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            key: attributes[key]
            for key in (
                "ApproximateReceiveCount",
                "SentTimestamp",
                "SenderId",
                "ApproximateFirstReceiveTimestamp",
            )
            if key in attributes
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody")
        or hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def poll_once(sqs: Any, config: PollerConfig, handler: Handler) -> int:
    """Receive one batch, invoke the handler, delete what succeeded. Returns the batch size."""
    resp = sqs.receive_message(
        QueueUrl=config.queue_url,
        MaxNumberOfMessages=min(config.batch_size, 10),
        WaitTimeSeconds=config.wait_seconds,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    messages = resp.get("Messages", [])
    if not messages:
        return 0
    region = sqs.meta.region_name
    event = {"Records": [to_lambda_record(m, config.queue_arn, region) for m in messages]}
    try:
        result = handler(event, LocalContext(config.function_timeout, config.function_name))
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
    except Exception:
        # Like Lambda: a handler that raises fails the whole batch, and SQS redelivers it.
        logger.exception("handler raised; the whole batch will be redelivered")
        return len(messages)
    done = [m for m in messages if m["MessageId"] not in failed]
    if done:
        sqs.delete_message_batch(
            QueueUrl=config.queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
            ],
        )
    return len(messages)


def run_poller(config: PollerConfig, handler_path: str, endpoint_url: str | None = None) -> None:
    """A worker process's loop: until SIGTERM/SIGINT."""
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    module_name, _, attr = handler_path.partition(":")
    module = __import__(module_name, fromlist=[attr])
    handler: Handler = getattr(module, attr)
    if config.warm_up:
        getattr(module, config.warm_up)()
    sqs = boto3.client("sqs", endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL"))
    parent = os.getppid()
    # Stop with the process that started us, however it ended (even SIGKILL).
    while not stopping and os.getppid() == parent:
        try:
            poll_once(sqs, config, handler)
        except Exception:  # the queue may be briefly unreachable; keep polling
            logger.exception("poll failed")
            time.sleep(1)
