"""The SQS publisher of job messages."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticSerializationError

from kedro_jobs.core.aws import aws_errors, client
from kedro_jobs.core.errors import JobsError
from kedro_jobs.core.requests import JobMessage

_DEPENDENCY = "SQS"
# SQS's own limit on a message body (bytes, UTF-8).
MAX_MESSAGE_BYTES = 262_144
# The message attribute that says why the consumer dead-lettered a message.
REASON_ATTRIBUTE = "reason"


class UnsendableMessage(JobsError):
    """The job's message cannot be put on the queue at all: the request is at fault."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"The job's queue message cannot be sent: {reason}")
        self.reason = reason


def encode(message: JobMessage) -> str:
    """The message body, checked to be sendable (serialisable, within SQS's size limit)
    before anything is written."""
    try:
        body = message.model_dump_json(exclude_none=True)
    except (PydanticSerializationError, ValueError, RecursionError) as exc:
        raise UnsendableMessage(f"it is not serialisable ({type(exc).__name__})") from exc
    size = len(body.encode())
    if size > MAX_MESSAGE_BYTES:
        raise UnsendableMessage(f"it would be {size} bytes; SQS takes at most {MAX_MESSAGE_BYTES}")
    return body


class JobQueue:
    def __init__(self, queue_url: str, *, sqs: Any = None) -> None:
        self.queue_url = queue_url
        self._client = sqs

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = client("sqs")
        return self._client

    def send(self, message: JobMessage | str) -> str:
        """Send one job message (or a body from ``encode``); returns the SQS message id."""
        body = message if isinstance(message, str) else encode(message)
        with aws_errors(_DEPENDENCY):
            resp = self.client.send_message(QueueUrl=self.queue_url, MessageBody=body)
        return str(resp["MessageId"])

    def send_later(self, body: str, seconds: int) -> str:
        """Send ``body`` to be delivered in ``seconds`` (SQS allows up to 900)."""
        with aws_errors(_DEPENDENCY):
            resp = self.client.send_message(
                QueueUrl=self.queue_url, MessageBody=body, DelaySeconds=seconds
            )
        return str(resp["MessageId"])

    def dead_letter(self, body: str, reason: str) -> str:
        """Put a message that can never succeed on this queue (the dead-letter queue) as it
        came, with why in its ``reason`` attribute; returns the new message id."""
        with aws_errors(_DEPENDENCY):
            resp = self.client.send_message(
                QueueUrl=self.queue_url,
                MessageBody=body,
                MessageAttributes={
                    REASON_ATTRIBUTE: {"DataType": "String", "StringValue": reason[:1024]}
                },
            )
        return str(resp["MessageId"])

    def retry_in(self, receipt_handle: str, seconds: int) -> None:
        """Make a received message visible again in ``seconds`` (0-43200)."""
        with aws_errors(_DEPENDENCY):
            self.client.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )

    def depth(self) -> tuple[int, int]:
        """(visible, in flight): SQS's ApproximateNumberOfMessages and -NotVisible."""
        with aws_errors(_DEPENDENCY):
            attrs = self.client.get_queue_attributes(
                QueueUrl=self.queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
        return (
            int(attrs.get("ApproximateNumberOfMessages", 0)),
            int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )
