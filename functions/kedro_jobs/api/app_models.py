"""The error body and the error responses every route documents."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    detail: Any


COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body could not be read"},
    # A list of field errors (FastAPI's validation), or one sentence (an unknown pipeline, a
    # bad cursor, an Idempotency-Key reused with another body).
    422: {"model": ErrorBody, "description": "The request is not valid; `detail` says why"},
    413: {"model": ErrorBody, "description": "Request body over 256 KB"},
    503: {"model": ErrorBody, "description": "DynamoDB, SQS or S3 unavailable; retry"},
}

JOB_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such job, or not yours"}
}
