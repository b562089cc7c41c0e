"""An SQS batch through Powertools' BatchProcessor with partial batch responses: what the
functions that read a queue (the consumer, the dead-letter function) share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)


def process_batch(
    event: dict[str, Any], context: Any, record_handler: Callable[..., None]
) -> dict[str, Any]:
    """Each record through ``record_handler``; one that raises is reported as a batch item
    failure, so SQS delivers only it again. ``record_handler`` gets the Lambda context too
    when it takes a ``lambda_context`` argument."""
    # Report every failed record, even when all failed, rather than fail the invocation.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
