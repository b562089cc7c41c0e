"""Submitting once per `Idempotency-Key`, with Powertools' idempotency utility.

The key is the caller's header, per user; the request body is the payload Powertools
validates, so the same key with another body is rejected (422), and one still being
submitted is a 409. The record holds the job (Powertools' Pydantic serializer), and a
replay returns it for `IDEMPOTENCY_TTL_SECONDS`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import (
    PydanticSerializer,
)
from fastapi import HTTPException

from kedro_jobs.core.aws import client
from kedro_jobs.core.models import Job
from kedro_jobs.core.requests import JobRequest
from kedro_jobs.core.settings import Settings

_SERIALIZER = PydanticSerializer(model=Job)


def scoped_key(user: str, key: str) -> str:
    """(``user``, ``key``) as one unambiguous string. Where neither holds a newline, the
    form records were made with before ("user\nkey": split at its only newline); otherwise a
    JSON pair, which holds no raw newline, so it never equals a key of the first form."""
    if "\n" not in user and "\n" not in key:
        return f"{user}\n{key}"
    return json.dumps([user, key])


def _submit(make: Callable[[], Job], data: dict[str, Any]) -> Job:
    return make()  # `data` is what Powertools keys and validates


class SubmitOnce:
    """Built once per container (`Services.submit_once`): Powertools configures its table
    from the first config it is given, so one config per container is what it honours."""

    def __init__(self, settings: Settings) -> None:
        self.config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="body",
            expires_after_seconds=settings.idempotency_ttl_seconds,
            raise_on_no_idempotency_key=True,
        )
        self.store = DynamoDBPersistenceLayer(
            table_name=settings.idempotency_table_name, boto3_client=client("dynamodb")
        )
        self._once = idempotent_function(
            _submit,
            data_keyword_argument="data",
            persistence_store=self.store,
            config=self.config,
            output_serializer=_SERIALIZER,
            key_prefix="submit",
        )

    def __call__(
        self,
        user: str,
        key: str,
        request: JobRequest,
        make: Callable[[], Job],
        lambda_context: Any = None,
    ) -> Job:
        """``make()``'s job the first time (``user``, ``key``) is seen; that job again after."""
        # An in-progress record expires with the invocation (the context is per request;
        # a Lambda container serves one request at a time).
        self.config.lambda_context = lambda_context
        try:
            job: Job = self._once(
                make=make,
                data={"key": scoped_key(user, key), "body": request.model_dump(mode="json")},
            )
        except IdempotencyValidationError as exc:
            raise HTTPException(
                422, "This Idempotency-Key was already used with a different request body"
            ) from exc
        except IdempotencyAlreadyInProgressError as exc:
            raise HTTPException(
                409, "A request with this Idempotency-Key is still in progress; retry shortly"
            ) from exc
        return job
