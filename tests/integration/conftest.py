from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from kedro_jobs.api import handler as api
from kedro_jobs.api.services import Services
from kedro_jobs.consumer import handler as consumer_handler
from kedro_jobs.core.settings import get_settings
from kedro_jobs.core.store import JobStore
from kedro_jobs_local.counting_project import use_record, write_project
from kedro_jobs_local.lambda_context import LocalContext
from kedro_jobs_local.lambda_events import http_api_event, response_json, rest_api_event, sqs_event
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


class ApiCall:
    """Invoke the API's Lambda handler with a real API Gateway event: HTTP API v2, or REST
    v1 with ``rest=True``. ``user`` is the JWT `sub` (v2) or the Lambda authorizer's principal
    (v1); ``claims`` replace the JWT's claims; ``authorizer`` replaces the whole authorizer
    context. Returns (status, JSON or text body, lower-cased headers)."""

    def __init__(self) -> None:
        self.configure()

    def configure(self, **settings: Any) -> Services:
        """Serve with these settings changed (e.g. ``auth_required=True``)."""
        services = Services(get_settings().model_copy(update=settings))
        api.app.state.services = services
        return services

    def __call__(
        self,
        method: str,
        path: str,
        *,
        rest: bool = False,
        user: str | None = None,
        claims: dict[str, str] | None = None,
        authorizer: dict[str, Any] | None = None,
        **kw: Any,
    ) -> tuple[int, Any, dict[str, str]]:
        if rest:
            event = rest_api_event(method, path, principal=user, **kw)
        else:
            if user is not None:
                claims = {"sub": user}
            event = http_api_event(method, path, claims=claims, **kw)
        if authorizer is not None:
            event["requestContext"]["authorizer"] = authorizer
        response = api.handler(event, LocalContext(29, "ApiFunction"))
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        body = response_json(response) if "json" in headers.get("content-type", "") else None
        return response["statusCode"], body if body is not None else response.get("body"), headers


@pytest.fixture
def api_call(aws: Aws) -> ApiCall:
    return ApiCall()


# -- the consumer handler over a real Kedro project ----------------------------------------


@pytest.fixture(scope="session")
def kedro_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("project"))


@pytest.fixture
def record(tmp_path: Path) -> Path:
    path = tmp_path / "executions.txt"
    use_record(path)
    return path


Invoke = Callable[..., dict[str, Any]]


@pytest.fixture(scope="session")
def _bootstrapped() -> dict[tuple[str, ...], Any]:
    """The consumer's Kedro runners, by what they were made from: bootstrapping a project
    costs ~1.2 s, and a runner keeps nothing of a job once it has ended (a warm container runs
    job after job on one), so the tests' fresh containers share them."""
    return {}


@pytest.fixture
def invoke(
    aws: Aws,
    kedro_project: Path,
    record: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_functions: Callable[[], None],
    _bootstrapped: dict[tuple[str, ...], Any],
) -> Invoke:
    """The consumer's Lambda handler, in a fresh container, on the test project: ``invoke(
    *bodies, timeout=30.0, message_ids=None)`` delivers one SQS event with those bodies and
    returns the handler's response (its partial batch failures). The container's Kedro
    project is one bootstrapped before, for the same project and settings, if there was one."""
    monkeypatch.setenv("KEDRO_PROJECT_PATH", str(kedro_project))
    fresh_functions()
    make_runner = consumer_handler._make_runner

    def bootstrapped_runner() -> Any:
        settings = get_settings()
        key = (
            os.environ["KEDRO_PROJECT_PATH"],
            settings.isolation,
            settings.jobs_data_root,
            settings.staging_dir,
        )
        if key not in _bootstrapped:
            _bootstrapped[key] = make_runner()  # a project that fails to load is not kept
        return _bootstrapped[key]

    monkeypatch.setattr(consumer_handler, "_make_runner", bootstrapped_runner)

    def run(
        *bodies: str, timeout: float = 30.0, message_ids: list[str] | None = None
    ) -> dict[str, Any]:
        event = sqs_event(*bodies, message_ids=message_ids)
        # The project is bootstrapped before the invocation's clock starts, as make dev's
        # consumers do it (Lambda's init phase): else the first test of a worker to invoke
        # would spend its budget on it, and on a loaded machine run out of time. A project
        # that fails to load fails again in the handler, which is what such a test checks.
        with contextlib.suppress(Exception):
            bootstrapped_runner()
        result: dict[str, Any] = consumer_handler.handler(event, LocalContext(timeout))
        return result

    return run
