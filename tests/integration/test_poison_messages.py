"""Poison messages mixed into batches with good ones: every good job completes; every bad
one ends with a clear reason, in a failed job (when it names one) or, at once, on the
dead-letter queue with its reason as a message attribute (and acknowledged: it is not
reported failed, so it never waits out the visibility timeout on the main queue)."""

from __future__ import annotations

import json
from typing import Any

from kedro_jobs.core.models import Job
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ApiJobs

from .conftest import Aws, Invoke

GOOD = {"version": 1, "pipeline_name": "two_nodes"}

# Bodies that name no job: they go to the DLQ at once.
ORPHANS: list[str] = [
    "",
    "not json",
    "{",
    "[]",
    "42",
    "null",
    '"a string"',
    "{}",
    json.dumps({"version": 2, "pipeline_name": "two_nodes"}),
    json.dumps({"version": "1", "pipeline_name": "two_nodes"}),
    json.dumps({"pipeline_name": "two_nodes"}),
    json.dumps({"version": 1}),
    json.dumps({"version": 1, "pipeline_name": "a b c"}),
    json.dumps({"version": 1, "pipeline_name": "x" * 10_000}),
    json.dumps({"version": 1, "pipeline_name": "two_nodes", "parameters": "x"}),
    json.dumps({"version": 1, "pipeline_name": "two_nodes", "parameters": {"p": "x" * 70_000}}),
    json.dumps({"version": 1, "pipeline_name": "two_nodes", "surprise": 1}),
    json.dumps({"version": 1, "pipeline_name": "two_nodes", "options": {"tagz": []}}),
    json.dumps({"version": 1, "pipeline_name": "\u202etwo_nodes\u0000"}),
    json.dumps({"version": 1, "pipeline_name": "two_nodes", "job_id": "../../etc/passwd"}),
    json.dumps({"Type": "Notification", "Message": "not json either"}),
    "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
]


def _named(job_id: str, **fields: Any) -> str:
    return json.dumps({"version": 1, "job_id": job_id, **fields})


def test_poison_messages_never_stop_the_good_ones(invoke: Invoke, aws: Aws, store: ApiJobs) -> None:
    # Jobs the API made whose messages arrive mangled: those jobs fail with the reason.
    mangled = {
        "wrong-type": {"pipeline_name": 5},
        "bad-params": {"pipeline_name": "two_nodes", "parameters": [1]},
        "bad-version": {"pipeline_name": "two_nodes", "version": 7},
        "unknown-pipeline": {"pipeline_name": "no_such_pipeline"},
    }
    for job_id, fields in mangled.items():
        # The job item is the truth the consumer runs; an API with no manifest yet accepts
        # any pipeline name.
        name = fields["pipeline_name"] if isinstance(fields["pipeline_name"], str) else "x"
        store.create(
            Job.new(job_id=job_id, pipeline_name=name, parameters={}, options={}, user_id="u")
        )
    # Each says it is from the job's owner, as the API's own messages do.
    named = [_named(job_id, user_id="u", **fields) for job_id, fields in mangled.items()]
    goods = [json.dumps({**GOOD, "idempotency_key": f"good-{i}"}) for i in range(6)]
    bad = ORPHANS + named
    assert len(bad) >= 20
    # Batches of 10 (the SQS maximum), good and bad interleaved.
    bodies = [b for pair in zip(bad, goods * 5, strict=False) for b in pair] + bad[len(goods) * 5 :]
    reported: set[str] = set()
    for start in range(0, len(bodies), 10):
        batch = bodies[start : start + 10]
        ids = [f"m{start + i}" for i in range(len(batch))]
        result = invoke(*batch, message_ids=ids, timeout=60)
        reported |= {f["itemIdentifier"] for f in result["batchItemFailures"]}
    by_id = {f"m{i}": body for i, body in enumerate(bodies)}
    # Nothing is left to come back: no record is reported failed.
    assert not reported, sorted(by_id[i] for i in reported)
    # Every orphan, and only orphans, is on the DLQ, each with its reason.
    dead: list[dict[str, Any]] = []
    while batch := aws.sqs.receive_message(
        QueueUrl=aws.resources.dlq_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=0,
        MessageAttributeNames=["All"],
    ).get("Messages", []):
        dead.extend(batch)
    assert sorted(m["Body"] for m in dead) == sorted(b for b in bodies if b in ORPHANS)
    reasons = [m["MessageAttributes"]["reason"]["StringValue"] for m in dead]
    assert all(reasons) and any("not JSON" in r for r in reasons)
    # Every good job completed, once each.
    jobs = store.list_jobs("anonymous", limit=100).jobs
    assert len(jobs) == len(goods) and all(j.status is JobStatus.COMPLETED for j in jobs)
    # Every named job failed, saying why.
    for job_id in mangled:
        failed = store.get(job_id)
        assert failed is not None and failed.status is JobStatus.FAILED, job_id
        assert failed.error_message
    assert "Unknown pipeline 'no_such_pipeline'" in (
        store.get("unknown-pipeline").error_message or ""
    )  # type: ignore[union-attr]
    assert "could not be read" in (store.get("wrong-type").error_message or "")  # type: ignore[union-attr]
