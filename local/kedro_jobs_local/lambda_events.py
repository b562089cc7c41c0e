"""The events Lambda hands a function, built off Lambda: real API Gateway and SQS payloads (as
`sam local generate-event` prints them, kept in sample_events/) re-aimed at one request, for
the tests and the benchmarks; and an SQS batch from received messages, for the local pollers."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

EVENTS = Path(__file__).resolve().parent / "sample_events"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


def http_api_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    claims: dict[str, str] | None = None,
) -> dict[str, Any]:
    """HTTP API (payload v2). ``claims`` are the JWT authorizer's claims (None: the sample's
    claims, which carry no `sub`)."""
    event = copy.deepcopy(load("http_api_v2.json"))
    event["rawPath"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path
    event["rawQueryString"] = urlencode(query or {})
    event["queryStringParameters"] = dict(query or {}) or None
    event["headers"] = {"content-type": "application/json", **(headers or {})}
    event.pop("cookies", None)
    if claims is not None:
        event["requestContext"]["authorizer"]["jwt"]["claims"] = claims
    _set_body(event, body)
    return event


def rest_api_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    principal: str | None = None,
) -> dict[str, Any]:
    """REST API (payload v1). ``principal`` is a Lambda authorizer's principalId."""
    event = copy.deepcopy(load("rest_api_v1.json"))
    event["httpMethod"] = method
    event["path"] = path
    event["requestContext"]["httpMethod"] = method
    event["requestContext"]["path"] = f"/prod{path}"
    event["queryStringParameters"] = dict(query or {}) or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in (query or {}).items()} or None
    all_headers = {"content-type": "application/json", **(headers or {})}
    event["headers"] = all_headers
    event["multiValueHeaders"] = {k: [v] for k, v in all_headers.items()}
    if principal is not None:
        event["requestContext"]["authorizer"] = {"principalId": principal}
    _set_body(event, body)
    return event


def _set_body(event: dict[str, Any], body: Any) -> None:
    if body is None:
        event["body"], event["isBase64Encoded"] = None, False
        return
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    event["body"] = base64.b64encode(raw).decode()
    event["isBase64Encoded"] = True


def sqs_event(
    *bodies: str, message_ids: list[str] | None = None, queue_arn: str | None = None
) -> dict[str, Any]:
    """An SQS batch with one record per body."""
    sample = load("sqs_receive_message.json")["Records"][0]
    records = []
    for i, body in enumerate(bodies):
        record = copy.deepcopy(sample)
        record["body"] = body
        record["messageId"] = (message_ids or [])[i] if message_ids else f"msg-{i}-{id(body)}"
        record["receiptHandle"] = f"handle-{i}"
        if queue_arn:
            record["eventSourceARN"] = queue_arn
        records.append(record)
    return {"Records": records}


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


def response_json(response: dict[str, Any]) -> Any:
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body) if body else None
