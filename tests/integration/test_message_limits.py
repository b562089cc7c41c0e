"""Issue 11 on the queue side: a message nested 300 deep and messages whose (user, key) pairs
joined alike, through the consumer's Lambda handler with real SQS events, a real Kedro project
and a real moto server."""

from __future__ import annotations

import json
from typing import Any

from kedro_jobs.core.states import JobStatus

from .conftest import ApiCall, Aws, Invoke


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_a_message_nested_300_deep_fails_its_job_and_breaks_no_read(
    invoke: Invoke, api_call: ApiCall, aws: Aws
) -> None:
    # A job the API made (so the message names it), whose message arrives 300 deep.
    _, job, _ = api_call("POST", "/api/v1/jobs", body={"pipeline_name": "two_nodes"})
    aws.messages()  # the API's own message is not the one under test
    body = json.dumps(
        {"version": 1, "job_id": job["id"], "pipeline_name": "two_nodes",
         "parameters": nested(300), "user_id": "anonymous"}
    )  # fmt: skip
    invoke(body)
    status, failed, _ = api_call("GET", f"/api/v1/jobs/{job['id']}")
    assert status == 200 and failed["status"] == JobStatus.FAILED
    assert "parameters nest 300 levels deep; the limit is 32" in failed["error_message"]
    assert failed["parameters"] == {}
    # The same from another system, naming no job: nothing is written for it.
    orphan = json.dumps({"version": 1, "pipeline_name": "two_nodes", "parameters": nested(300)})
    answer = invoke(orphan, message_ids=["orphan-1"])
    assert answer["batchItemFailures"] in ([], [{"itemIdentifier": "orphan-1"}])
    assert len(aws.items()) == 1
    status, listing, _ = api_call("GET", "/api/v1/jobs")
    assert status == 200 and [j["id"] for j in listing["jobs"]] == [job["id"]]


def test_user_and_key_pairs_that_joined_alike_make_two_jobs(invoke: Invoke, aws: Aws) -> None:
    def foreign(user: str, key: str) -> str:
        return json.dumps(
            {"version": 1, "pipeline_name": "two_nodes", "parameters": {"x": 1},
             "user_id": user, "idempotency_key": key}
        )  # fmt: skip

    assert invoke(foreign("team:a", "K"), foreign("team", "a:K")) == {"batchItemFailures": []}
    jobs = {item["user_id"]["S"]: item for item in aws.items()}
    assert set(jobs) == {"team:a", "team"}
    assert {item["status"]["S"] for item in jobs.values()} == {"completed"}
    # Each is still the one job of its pair: a redelivery makes no third.
    invoke(foreign("team:a", "K"))
    assert len(aws.items()) == 2
