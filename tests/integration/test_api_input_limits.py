"""Issue 11, as an attacker would try it: real API Gateway events (v2 and v1) through the
Mangum handler against a real moto server. Every bad input is a 4xx that writes nothing, a
failed send fails its job and names it, no stored item breaks a read, identity fails closed,
and a 405 says what is allowed."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from kedro_jobs.core.models import Job
from kedro_jobs.core.queue import JobQueue
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ApiJobs, to_item

from .conftest import ApiCall, Aws

REST = pytest.mark.parametrize("rest", [False, True], ids=["http-api-v2", "rest-api-v1"])
JOBS = "/api/v1/jobs"


def nested(levels: int) -> dict[str, Any]:
    """A parameters object ``levels`` deep (itself level 1)."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def _listings_answer(api_call: ApiCall, rest: bool = False, **kw: Any) -> list[dict[str, Any]]:
    """Every listing of the caller (plain, by status, by pipeline) answers 200; the jobs."""
    for query in ({}, {"status": "pending"}, {"status": "failed"}, {"pipeline_name": "p"}):
        status, body, _ = api_call("GET", JOBS, rest=rest, query=query, **kw)
        assert status == 200, (query, body)
    status, body, _ = api_call("GET", JOBS, rest=rest, **kw)
    jobs: list[dict[str, Any]] = body["jobs"]
    return jobs


# -- bad input: a 4xx, nothing written, reads unaffected --------------------------------------


@REST
def test_parameters_nested_256_deep_are_422_and_write_nothing(
    api_call: ApiCall, aws: Aws, rest: bool
) -> None:
    for levels in (256, 33):
        status, body, _ = api_call(
            "POST", JOBS, rest=rest, body={"pipeline_name": "p", "parameters": nested(levels)}
        )
        assert status == 422
        [error] = body["detail"]
        assert error["loc"] == ["body", "parameters"]
        assert f"parameters nest {levels} levels deep; the limit is 32" in error["msg"]
    assert aws.items() == [] and aws.messages() == []
    assert _listings_answer(api_call, rest) == []
    status, job, _ = api_call(
        "POST", JOBS, rest=rest, body={"pipeline_name": "p", "parameters": nested(32)}
    )
    assert status == 202
    assert [j["id"] for j in _listings_answer(api_call, rest)] == [job["id"]]


@pytest.mark.parametrize(
    "body",
    [
        {"pipeline_name": "p", "env": ".."},
        {"pipeline_name": "p", "env": "."},
        {"pipeline_name": "p", "options": {"env": ".."}},
        {"pipeline_name": "p", "env": "conf/../.."},
        {"pipeline_name": "p", "options": [], "tags": ["t"]},
        {"pipeline_name": "p", "options": None, "env": "base"},
    ],
    ids=["env-dotdot", "env-dot", "nested-env-dotdot", "env-path", "options-list", "options-null"],
)
def test_env_and_options_are_checked_and_a_bad_one_writes_nothing(
    api_call: ApiCall, aws: Aws, body: dict[str, Any]
) -> None:
    status, answer, _ = api_call("POST", JOBS, body=body)
    assert status == 422
    [error] = answer["detail"]
    assert error["loc"][:2] == ["body", "options"]
    assert aws.items() == [] and aws.messages() == []


def test_a_crafted_cursor_is_the_usual_invalid_cursor(api_call: ApiCall) -> None:
    crafted = base64.urlsafe_b64encode(b"[" * 3000).decode().rstrip("=")
    for query in ({}, {"status": "failed"}, {"pipeline_name": "p"}):
        status, body, _ = api_call("GET", JOBS, query={**query, "cursor": crafted})
        assert status == 422
        assert body["detail"] == "cursor is not valid for this listing; pass next_cursor unchanged"


# -- a send that fails, of any kind -----------------------------------------------------------


class _BrokenSqs:
    """An SQS client failing the way no one planned for: not a botocore error."""

    def send_message(self, **_: Any) -> dict[str, Any]:
        raise RuntimeError("a bug in the send path")


def test_any_send_failure_fails_the_job_and_answers_503_naming_it(
    api_call: ApiCall, aws: Aws
) -> None:
    services = api_call.configure()
    services.queue = JobQueue(aws.resources.queue_url, sqs=_BrokenSqs())
    status, body, _ = api_call("POST", JOBS, body={"pipeline_name": "p"})
    assert status == 503
    [item] = aws.items()
    job_id = item["id"]["S"]
    assert body["detail"] == (
        f"Job {job_id!r} could not be queued (unexpected RuntimeError); it will not run. "
        "Submit it again."
    )
    assert item["status"]["S"] == "failed"
    assert item["error_message"]["S"] == body["detail"]
    assert [(j["id"], j["status"]) for j in _listings_answer(api_call)] == [(job_id, "failed")]


def test_a_queue_that_is_gone_names_the_job_too(api_call: ApiCall, aws: Aws) -> None:
    api_call.configure(jobs_queue_url=aws.resources.queue_url + "-gone")
    status, body, _ = api_call("POST", JOBS, body={"pipeline_name": "p"})
    assert status == 503
    [item] = aws.items()
    # A queue that does not exist is a refusal (a 4xx), not an outage: the detail says which.
    assert item["id"]["S"] in body["detail"] and "SQS refused the request" in body["detail"]
    assert item["status"]["S"] == "failed"


# -- stored items that cannot be read whole ---------------------------------------------------


def _put_damaged(aws: Aws, *, status: str, **attributes: Any) -> str:
    job = Job.new(pipeline_name="p", parameters={}, options={}, user_id="anonymous")
    item = to_item(job.model_copy(update={"status": JobStatus(status)}))
    aws.dynamodb.put_item(TableName=aws.resources.table_name, Item={**item, **attributes})
    return job.id


def test_a_damaged_item_never_breaks_a_read(api_call: ApiCall, aws: Aws, store: ApiJobs) -> None:
    # What the bug left behind: a pending job whose parameters nest 300 deep (its message was
    # never sent), and a finished job whose stored results are not JSON.
    stuck = _put_damaged(aws, status="pending", parameters={"S": json.dumps(nested(300))})
    broken = _put_damaged(aws, status="completed", results={"S": "{not json"})
    api_call("POST", JOBS, body={"pipeline_name": "p"})
    jobs = {j["id"]: j for j in _listings_answer(api_call)}
    assert len(jobs) == 3
    assert jobs[stuck]["parameters"] == {}
    assert (
        "parameters (parameters nest 300 levels deep; the limit is 32)"
        in (jobs[stuck]["error_message"])
    )
    assert "results (results is not JSON)" in jobs[broken]["error_message"]
    status, one, _ = api_call("GET", f"{JOBS}/{stuck}")
    assert status == 200 and one["status"] == "pending"
    # The user can end the stuck job, and is told why the broken one cannot be retried.
    status, cancelled, _ = api_call("POST", f"{JOBS}/{stuck}/cancel")
    assert status == 200 and cancelled["status"] == "cancelled"
    status, refused, _ = api_call("POST", f"{JOBS}/{broken}/retry")
    assert status == 409 and "could not be read in full" in refused["detail"]
    # The store can still fail such a job (the API after a failed send, the DLQ handler).
    other = _put_damaged(aws, status="pending", parameters={"S": "[" * 100_000})
    failed = store.fail(other, "given up")
    assert failed is not None and failed.status == "failed"


def test_a_job_from_before_a_limit_cannot_be_retried_but_says_why(
    api_call: ApiCall, aws: Aws
) -> None:
    old = _put_damaged(aws, status="failed", options={"S": json.dumps({"env": ".."})})
    status, body, _ = api_call("POST", f"{JOBS}/{old}/retry")
    assert status == 409 and "could not be read in full" in body["detail"]
    # The record says which option is no longer accepted, and why.
    status, record, _ = api_call("GET", f"{JOBS}/{old}")
    assert status == 200 and record["options"] == {}
    assert "options.env: Value error, env must name a folder" in record["error_message"]
    assert len(aws.items()) == 1 and aws.messages() == []


# -- 405 and HEAD -----------------------------------------------------------------------------


@REST
@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", JOBS, "GET, HEAD, POST"),
        ("PUT", f"{JOBS}/abc", "GET, HEAD"),
        ("POST", f"{JOBS}/abc", "GET, HEAD"),
        ("GET", f"{JOBS}/abc/cancel", "POST"),
        ("DELETE", f"{JOBS}/abc/retry", "POST"),
        ("POST", f"{JOBS}/abc/logs", "GET, HEAD"),
        ("POST", "/api/v1/pipelines", "GET, HEAD"),
        ("PATCH", "/api/v1/pipelines/p", "GET, HEAD"),
        ("PUT", "/api/v1/health", "GET, HEAD"),
        ("HEAD", f"{JOBS}/abc/cancel", "POST"),
    ],
)
def test_a_405_lists_the_allowed_methods(
    api_call: ApiCall, rest: bool, method: str, path: str, allow: str
) -> None:
    status, _, headers = api_call(method, path, rest=rest)
    assert status == 405
    assert headers["allow"] == allow


@REST
def test_head_answers_as_get_without_a_body(api_call: ApiCall, rest: bool) -> None:
    api_call("POST", JOBS, rest=rest, body={"pipeline_name": "p"})
    for path, expected in ((JOBS, 200), ("/api/v1/health", 200), (f"{JOBS}/nope", 404)):
        get_status, _, get_headers = api_call("GET", path, rest=rest)
        status, body, headers = api_call("HEAD", path, rest=rest)
        assert status == get_status == expected
        assert not body
        assert headers["content-type"] == get_headers["content-type"]


# -- identity fails closed --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rest", "caller", "status"),
    [
        (False, {"claims": {"scope": "jobs/write"}}, 401),  # a JWT without `sub`
        (False, {"claims": {"sub": ""}}, 401),
        (False, {"claims": {"sub": "anonymous"}}, 403),
        (False, {"claims": {"sub": "client:etl"}}, 403),
        (False, {"authorizer": {"lambda": {"tenant": "acme"}}}, 401),  # no principal
        (True, {"authorizer": {"tenant": "acme"}}, 401),  # REST Lambda authorizer, no principal
        (True, {"user": "anonymous"}, 403),
    ],
    ids=[
        "jwt-no-sub",
        "jwt-sub-empty",
        "jwt-sub-anonymous",
        "jwt-sub-client-prefix",
        "http-lambda-no-principal",
        "rest-lambda-no-principal",
        "rest-principal-anonymous",
    ],
)
def test_with_an_authorizer_no_identity_is_refused(
    api_call: ApiCall, aws: Aws, rest: bool, caller: dict[str, Any], status: int
) -> None:
    # An anonymous job from before the authorizer was turned on: no refused caller sees it.
    api_call("POST", JOBS, body={"pipeline_name": "p"})
    api_call.configure(auth_required=True)
    answered, body, headers = api_call(
        "POST", JOBS, rest=rest, body={"pipeline_name": "p"}, **caller
    )
    assert answered == status and body["detail"]
    if status == 401:
        assert headers["www-authenticate"] == "Bearer"
    for path in (JOBS, f"{JOBS}/{aws.items()[0]['id']['S']}"):
        assert api_call("GET", path, rest=rest, **caller)[0] == status
    assert len(aws.items()) == 1 and len(aws.messages()) == 1


def test_machine_clients_are_their_client_id_and_users_stay_apart(
    api_call: ApiCall, aws: Aws
) -> None:
    api_call.configure(auth_required=True)
    machine = {"claims": {"client_id": "etl", "scope": "jobs/write"}}
    status, job, _ = api_call("POST", JOBS, body={"pipeline_name": "p"}, **machine)
    assert status == 202 and job["user_id"] == "client:etl"
    assert [j["id"] for j in _listings_answer(api_call, **machine)] == [job["id"]]
    # A user whose `sub` is the client's id is someone else.
    assert _listings_answer(api_call, user="etl") == []
    assert api_call("GET", f"{JOBS}/{job['id']}", user="etl")[0] == 404
    status, alice, _ = api_call("POST", JOBS, rest=True, user="alice", body={"pipeline_name": "p"})
    assert status == 202 and alice["user_id"] == "alice"
