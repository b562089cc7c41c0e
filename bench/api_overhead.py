"""API overhead: `POST /api/v1/jobs` through the Mangum handler in-process, against the raw
boto3 `put_item` + `send_message` it wraps, on the same moto backend, interleaved."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from typing import Any


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(table: str, queue_url: str, requests: int = 500) -> dict[str, Any]:
    import boto3

    from kedro_jobs.api import handler as api
    from kedro_jobs.api.services import Services
    from kedro_jobs.core.settings import get_settings
    from kedro_jobs_local.lambda_context import LocalContext
    from kedro_jobs_local.lambda_events import http_api_event

    get_settings.cache_clear()
    api.app.state.services = Services(get_settings())
    ddb, sqs = boto3.client("dynamodb"), boto3.client("sqs")
    event = http_api_event("POST", "/api/v1/jobs", body={"pipeline_name": "hello"})

    def through_api() -> None:
        assert api.handler(event, LocalContext(29, "ApiFunction"))["statusCode"] == 202

    def raw() -> None:
        job_id = str(uuid.uuid4())
        ddb.put_item(
            TableName=table,
            Item={"id": {"S": job_id}, "status": {"S": "pending"}, "user_id": {"S": "raw"}},
        )
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"job_id": job_id}))

    for _ in range(20):  # warm both paths
        through_api()
        raw()
    api_times: list[float] = []
    raw_times: list[float] = []
    for i in range(requests):
        for fn, out in ((through_api, api_times), (raw, raw_times))[:: 1 if i % 2 else -1]:
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
        if i % 100 == 99:  # moto's SQS slows as a queue grows: keep it shallow
            _drain(sqs, queue_url)
    return {
        "requests": requests,
        "api_median_ms": statistics.median(api_times) * 1000,
        "raw_median_ms": statistics.median(raw_times) * 1000,
        "api_p95_ms": _percentile(api_times, 0.95) * 1000,
        "raw_p95_ms": _percentile(raw_times, 0.95) * 1000,
        "added_median_ms": (statistics.median(api_times) - statistics.median(raw_times)) * 1000,
        "added_p95_ms": (_percentile(api_times, 0.95) - _percentile(raw_times, 0.95)) * 1000,
    }


def _drain(sqs: Any, queue_url: str) -> None:
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
