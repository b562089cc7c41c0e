"""Real API Gateway events (REST v1 and HTTP API v2) through the Mangum handler, against a
real moto server: what lands in DynamoDB and SQS is checked directly."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from kedro_jobs.api import handler as api
from kedro_jobs.api.services import Services
from kedro_jobs.core.artifacts import MANIFEST_KEY, log_key
from kedro_jobs.core.settings import get_settings

from .conftest import ApiCall, Aws

Call = Callable[..., tuple[int, Any, dict[str, str]]]


@pytest.fixture
def call(api_call: ApiCall) -> Call:
    """Invoke the Lambda handler with an HTTP API v2 event (or v1 with ``rest=True``): the
    conftest's ``api_call``."""
    return api_call


@pytest.mark.parametrize("rest", [False, True], ids=["http-api-v2", "rest-api-v1"])
def test_submit_writes_the_item_then_the_message(call: Call, aws: Aws, rest: bool) -> None:
    status, body, headers = call(
        "POST", "/api/v1/jobs", rest=rest, body={"pipeline_name": "data_loading", "parameters": {}}
    )
    assert status == 202
    assert headers["location"] == f"/api/v1/jobs/{body['id']}"
    assert body["status"] == "pending"
    assert body["user_id"] == "anonymous"
    assert body["results"] is None
    [item] = aws.items()
    assert item["id"]["S"] == body["id"] and item["status"]["S"] == "pending"
    [message] = aws.messages()
    sent = json.loads(message["Body"])
    assert sent == {
        "version": 1,
        "job_id": body["id"],
        "pipeline_name": "data_loading",
        "parameters": {},
        "options": {},
        "user_id": "anonymous",
    }
    status, fetched, _ = call("GET", f"/api/v1/jobs/{body['id']}", rest=rest)
    assert status == 200 and fetched == body


def test_identity_comes_from_the_authorizer_and_isolates_users(call: Call) -> None:
    _, alice_job, _ = call("POST", "/api/v1/jobs", user="alice", body={"pipeline_name": "p"})
    assert alice_job["user_id"] == "alice"
    _, rest_job, _ = call(
        "POST", "/api/v1/jobs", rest=True, user="carol", body={"pipeline_name": "p"}
    )
    assert rest_job["user_id"] == "carol"
    job_url = f"/api/v1/jobs/{alice_job['id']}"
    assert call("GET", job_url, user="bob")[0] == 404
    assert call("POST", f"{job_url}/cancel", user="bob")[0] == 404
    assert call("POST", f"{job_url}/retry", user="bob")[0] == 404
    assert call("GET", f"{job_url}/logs", user="bob")[0] == 404
    assert call("GET", "/api/v1/jobs", user="bob")[1]["jobs"] == []
    assert [j["id"] for j in call("GET", "/api/v1/jobs", user="alice")[1]["jobs"]] == [
        alice_job["id"]
    ]
    # A user_id in the body is not a way in.
    status, _, _ = call("POST", "/api/v1/jobs", body={"pipeline_name": "p", "user_id": "alice"})
    assert status == 422


def test_idempotency_key_returns_the_first_job(call: Call, aws: Aws) -> None:
    body = {"pipeline_name": "data_loading", "parameters": {"n": 1}}
    headers = {"Idempotency-Key": "order-42"}
    first = call("POST", "/api/v1/jobs", body=body, headers=headers)
    again = call("POST", "/api/v1/jobs", body=body, headers=headers)
    assert first[0] == again[0] == 202
    assert first[1]["id"] == again[1]["id"]
    assert len(aws.items()) == 1 and len(aws.messages()) == 1
    changed = call("POST", "/api/v1/jobs", body={**body, "parameters": {"n": 2}}, headers=headers)
    assert changed[0] == 422 and "different request body" in changed[1]["detail"]
    # Another user's identical key is another job.
    other = call("POST", "/api/v1/jobs", body=body, headers=headers, user="bob")
    assert other[0] == 202 and other[1]["id"] != first[1]["id"]


def test_idempotency_keys_of_two_users_never_collide(call: Call, aws: Aws) -> None:
    # Joined with a newline, ("a\nb", "c") and ("a", "b\nc") were one key: the second user
    # was handed the first user's job.
    body = {"pipeline_name": "data_loading"}
    first = call("POST", "/api/v1/jobs", body=body, headers={"Idempotency-Key": "c"}, user="a\nb")
    second = call("POST", "/api/v1/jobs", body=body, headers={"Idempotency-Key": "b\nc"}, user="a")
    assert first[0] == second[0] == 202
    assert first[1]["id"] != second[1]["id"]
    assert (first[1]["user_id"], second[1]["user_id"]) == ("a\nb", "a")


BAD_BODIES: list[Any] = [
    b"{not json",
    b"",
    b"\xff\xfe\x00",
    [],
    "just a string",
    {},
    {"pipeline_name": 42},
    {"pipeline_name": None},
    {"pipeline_name": "two words"},
    {"pipeline_name": "x" * 129},
    {"pipeline_name": "p", "parameters": [1, 2]},
    {"pipeline_name": "p", "parameters": {"x": "y" * 70_000}},
    {"pipeline_name": "p", "surprise": True},
    {"pipeline_name": "p", "options": {"tagz": ["a"]}},
    {"pipeline_name": "p", "tags": 5},
    {"pipeline_name": "p", "load_versions": ["a"]},
    b'{"pipeline_name": "p", "parameters": {"n": NaN}}',
    b"x" * 300_000,
]


@pytest.mark.parametrize("bad", BAD_BODIES, ids=[f"bad-{i}" for i in range(len(BAD_BODIES))])
def test_bad_input_is_a_clear_4xx_and_writes_nothing(call: Call, aws: Aws, bad: Any) -> None:
    status, body, _ = call("POST", "/api/v1/jobs", body=bad)
    assert 400 <= status < 500
    assert body["detail"]
    assert aws.items() == []
    assert aws.messages() == []


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "x"},
        {"status": "done"},
        {"cursor": "bogus"},
        {"pipeline_name": "a b"},
    ],
)
def test_bad_listing_queries_are_rejected(call: Call, query: dict[str, str]) -> None:
    status, body, _ = call("GET", "/api/v1/jobs", query=query)
    assert status == 422 and body["detail"]


def test_unknown_ids_are_404(call: Call) -> None:
    for path in ("/api/v1/jobs/nope", "/api/v1/jobs/" + "x" * 200, "/api/v1/jobs/nope/logs"):
        assert call("GET", path)[0] == 404
    assert call("POST", "/api/v1/jobs/nope/cancel")[0] == 404


def test_a_request_aws_refuses_answers_500_naming_it_not_503(call: Call, aws: Aws) -> None:
    # A table that does not exist: DynamoDB's 400, which asking again will not mend (a 503
    # would tell the client to retry).
    settings = get_settings().model_copy(update={"jobs_table_name": "table-that-is-gone"})
    api.app.state.services = Services(settings)
    status, body, _ = call("GET", "/api/v1/jobs/some-job")
    assert status == 500
    assert "DynamoDB refused the request: ResourceNotFoundException" in body["detail"]


def test_queue_down_fails_the_job_and_answers_503(call: Call, aws: Aws) -> None:
    settings = get_settings().model_copy(
        update={"jobs_queue_url": aws.resources.queue_url + "-gone"}
    )
    api.app.state.services = Services(settings)
    status, body, _ = call("POST", "/api/v1/jobs", body={"pipeline_name": "p"})
    assert status == 503 and "SQS" in body["detail"]
    [item] = aws.items()
    assert item["status"]["S"] == "failed"
    assert "could not be queued" in item["error_message"]["S"]


def test_cancel_then_retry(call: Call, aws: Aws) -> None:
    _, job, _ = call("POST", "/api/v1/jobs", body={"pipeline_name": "p", "tags": ["t"]})
    assert call("POST", f"/api/v1/jobs/{job['id']}/retry")[0] == 409  # not finished yet
    status, cancelled, _ = call("POST", f"/api/v1/jobs/{job['id']}/cancel")
    assert status == 200 and cancelled["status"] == "cancelled"
    assert call("POST", f"/api/v1/jobs/{job['id']}/cancel")[0] == 409
    status, retried, headers = call("POST", f"/api/v1/jobs/{job['id']}/retry")
    assert status == 202 and retried["retry_of"] == job["id"]
    assert retried["options"] == {"tags": ["t"]} and retried["id"] != job["id"]
    assert headers["location"].endswith(retried["id"])
    assert len(aws.messages()) == 2


def test_list_filters_and_paginates(call: Call) -> None:
    ids = [
        call("POST", "/api/v1/jobs", body={"pipeline_name": f"p{i % 2}"})[1]["id"] for i in range(7)
    ]
    status, page, _ = call("GET", "/api/v1/jobs", query={"limit": "3"})
    assert status == 200 and [j["id"] for j in page["jobs"]] == ids[::-1][:3]
    status, page2, _ = call(
        "GET", "/api/v1/jobs", query={"limit": "3", "cursor": page["next_cursor"]}
    )
    assert [j["id"] for j in page2["jobs"]] == ids[::-1][3:6]
    _, only_p1, _ = call("GET", "/api/v1/jobs", query={"pipeline_name": "p1", "status": "pending"})
    assert [j["id"] for j in only_p1["jobs"]] == [ids[5], ids[3], ids[1]]
    assert only_p1["next_cursor"] is None


def test_logs_are_served_once_written(call: Call, aws: Aws) -> None:
    _, job, _ = call("POST", "/api/v1/jobs", body={"pipeline_name": "p"})
    status, body, _ = call("GET", f"/api/v1/jobs/{job['id']}/logs")
    assert status == 404 and "no log yet" in body["detail"]
    aws.s3.put_object(Bucket=aws.resources.bucket, Key=log_key(job["id"]), Body=b"node a ran\n")
    status, text, headers = call("GET", f"/api/v1/jobs/{job['id']}/logs")
    assert status == 200 and text == "node a ran\n"
    assert headers["content-type"].startswith("text/plain")


def test_pipelines_come_from_the_manifest(call: Call, aws: Aws) -> None:
    assert call("GET", "/api/v1/pipelines")[1]["pipelines"] == []
    assert call("POST", "/api/v1/jobs", body={"pipeline_name": "anything"})[0] == 202
    manifest = {
        "project": "demo",
        "pipelines": {
            "data_loading": {
                "nodes": [{"name": "load", "inputs": ["params:n"], "outputs": ["raw"]}],
                "parameters": ["n"],
            },
            "reporting": {},
        },
    }
    aws.s3.put_object(
        Bucket=aws.resources.bucket, Key=MANIFEST_KEY, Body=json.dumps(manifest).encode()
    )
    api.app.state.services = Services(get_settings())  # a fresh container reads it at once
    listed = call("GET", "/api/v1/pipelines")[1]
    assert [p["name"] for p in listed["pipelines"]] == ["data_loading", "reporting"]
    status, one, _ = call("GET", "/api/v1/pipelines/data_loading")
    assert status == 200 and one["nodes"][0]["name"] == "load" and one["parameters"] == ["n"]
    assert call("GET", "/api/v1/pipelines/nope")[0] == 404
    status, body, _ = call("POST", "/api/v1/jobs", body={"pipeline_name": "nope"})
    assert status == 422 and "data_loading, reporting" in body["detail"]
    # Run options that select no node are refused at submit, saying what exists.
    for options, says in (
        ({"tags": ["nope"]}, "select no node of pipeline 'data_loading'. Its nodes: load"),
        ({"node_names": ["lode"]}, "no node named lode; its nodes: load"),
        ({"namespaces": ["x"]}, "no node in namespace x"),
    ):
        status, body, _ = call(
            "POST", "/api/v1/jobs", body={"pipeline_name": "data_loading", **options}
        )
        assert status == 422 and says in body["detail"]
    assert len(aws.items()) == 1  # only the job made before the manifest
    assert (
        call(
            "POST", "/api/v1/jobs", body={"pipeline_name": "data_loading", "node_names": ["load"]}
        )[0]
        == 202
    )


def test_a_pipeline_whose_name_a_job_cannot_take_is_listed_saying_why(call: Call, aws: Aws) -> None:
    manifest = {"pipelines": {"data processing": {}, "data_loading": {}}}
    aws.s3.put_object(
        Bucket=aws.resources.bucket, Key=MANIFEST_KEY, Body=json.dumps(manifest).encode()
    )
    api.app.state.services = Services(get_settings())
    listed = {p["name"]: p for p in call("GET", "/api/v1/pipelines")[1]["pipelines"]}
    assert listed["data_loading"]["submittable"] and listed["data_loading"]["reason"] is None
    odd = listed["data processing"]
    assert odd["submittable"] is False and "rename it" in odd["reason"]
    status, _, _ = call("POST", "/api/v1/jobs", body={"pipeline_name": "data processing"})
    assert status == 422


def test_health_names_the_failing_dependency(call: Call, aws: Aws) -> None:
    status, body, _ = call("GET", "/api/v1/health")
    assert status == 200 and body["checks"] == {"table": "ok", "queue": "ok", "bucket": "ok"}
    settings = get_settings().model_copy(update={"artifacts_bucket": "no-such-bucket"})
    api.app.state.services = Services(settings)
    status, body, _ = call("GET", "/api/v1/health")
    assert status == 503 and body["checks"]["bucket"].startswith("error")
    assert "bucket" in body["detail"] and body["checks"]["table"] == "ok"


def test_logs_never_carry_tokens_or_the_raw_event(
    call: Call, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    secret = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2VuLWZvci10ZXN0cw.sig"
    caplog.set_level("INFO")  # the functions' level (LOG_LEVEL); botocore's DEBUG signs requests
    for path, body in (("/api/v1/jobs", {"pipeline_name": "p"}), ("/api/v1/jobs", b"{bad")):
        call("POST", path, body=body, headers={"Authorization": f"Bearer {secret}"})
    call("GET", "/api/v1/jobs/nope", headers={"Authorization": f"Bearer {secret}"})
    captured = capsys.readouterr()
    logged = captured.out + captured.err + caplog.text
    assert logged.strip(), "the handler logged nothing at all: the check would be empty"
    assert secret not in logged
    assert "Authorization" not in logged and "authorization" not in logged
    assert "requestContext" not in logged  # no whole raw event either


SIMPLE_CROSS_SITE = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""]


@pytest.mark.parametrize("content_type", SIMPLE_CROSS_SITE)
def test_a_simple_cross_site_request_changes_nothing(
    call: Call, aws: Aws, content_type: str
) -> None:
    headers = {"content-type": content_type}
    body = {"pipeline_name": "data_loading"}
    status, answer, _ = call("POST", "/api/v1/jobs", body=body, headers=headers)
    assert status == 415 and "application/json" in answer["detail"]
    assert aws.items() == [] and aws.messages() == []
    _, job, _ = call("POST", "/api/v1/jobs", body=body)
    for action in ("cancel", "retry"):
        status, _, _ = call("POST", f"/api/v1/jobs/{job['id']}/{action}", headers=headers)
        assert status == 415
    assert len(aws.items()) == 1
    assert call("GET", f"/api/v1/jobs/{job['id']}")[1]["status"] == "pending"
    # What the web page and the CLI send: JSON, or the header where there is no body.
    client = {**headers, "X-Kedro-Jobs-Client": "cli"}
    status, cancelled, _ = call("POST", f"/api/v1/jobs/{job['id']}/cancel", headers=client)
    assert status == 200 and cancelled["status"] == "cancelled"
