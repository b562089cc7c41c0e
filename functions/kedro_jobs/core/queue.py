"""The SQS publisher of job messages."""

from __future__ import annotations

from typing import Any

from kedro_jobs.core.aws import aws_errors, client
from kedro_jobs.core.models import JobMessage

_DEPENDENCY = "SQS"


class JobQueue:
    def __init__(self, queue_url: str, *, sqs: Any = None) -> None:
        self.queue_url = queue_url
        self._client = sqs

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = client("sqs")
        return self._client

    def send(self, message: JobMessage) -> str:
        """Send one job message; returns the SQS message id."""
        with aws_errors(_DEPENDENCY):
            resp = self.client.send_message(
                QueueUrl=self.queue_url,
                MessageBody=message.model_dump_json(exclude_none=True),
            )
        return str(resp["MessageId"])

    def ping(self) -> None:
        with aws_errors(_DEPENDENCY):
            self.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
