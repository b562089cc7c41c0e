from __future__ import annotations

from typing import Any

import boto3
import pytest

from kedro_jobs.core.store import JobStore
from kedro_jobs_local.moto_server import MotoServer
from kedro_jobs_local.resources import LocalResources


class Aws:
    """Direct boto3 access to the moto server, to check what the code wrote."""

    def __init__(self, endpoint_url: str, resources: LocalResources) -> None:
        self.resources = resources
        self.dynamodb = boto3.client("dynamodb", endpoint_url=endpoint_url)
        self.sqs = boto3.client("sqs", endpoint_url=endpoint_url)
        self.s3 = boto3.client("s3", endpoint_url=endpoint_url)

    def items(self) -> list[dict[str, Any]]:
        # A test may Scan; function code never does.
        resp = self.dynamodb.scan(TableName=self.resources.table_name)
        items: list[dict[str, Any]] = resp["Items"]
        return items

    def messages(self, queue_url: str | None = None, max_number: int = 10) -> list[dict[str, Any]]:
        resp = self.sqs.receive_message(
            QueueUrl=queue_url or self.resources.queue_url,
            MaxNumberOfMessages=max_number,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = resp.get("Messages", [])
        return messages


@pytest.fixture(scope="session")
def _aws(stack: LocalResources, moto_server: MotoServer) -> Aws:
    return Aws(moto_server.endpoint_url, stack)


@pytest.fixture
def aws(clean_stack: LocalResources, _aws: Aws) -> Aws:
    return _aws


@pytest.fixture
def store(aws: Aws) -> JobStore:
    return JobStore(aws.resources.table_name, dynamodb=aws.dynamodb)
