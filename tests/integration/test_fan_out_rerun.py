"""Rerun from failure of a fanned-out job, through the API and the consumer's Lambda handler
(real API Gateway and SQS events, moto's Step Functions running the template's state
machine, an S3 data root): the ``fragile`` pipeline's three branches and join, whose branch
``b`` fails while a marker file exists. The failed job keeps its completed groups'
hand-overs; ``POST /jobs/{id}/retry {"from_failure": true}`` makes a job that fans out with
the same plan, runs only the groups that did not complete (the others ``reused``), and ends
with the results and committed files of an uninterrupted run."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from kedro_jobs.core.errors import DependencyUnavailable
from kedro_jobs.core.fanout import Coordinator, transitions
from kedro_jobs.core.models import Job, utcnow
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ApiJobs
from kedro_jobs_local.counting_project import executions
from tests.support.fanout_project import write_fanout_project
from tests.support.rerun_project import MARKER_VAR

from .conftest import ApiCall, Aws, Invoke, drain

pytestmark = pytest.mark.integration

EVERY_NODE = ["prep_a", "fit_a", "prep_b", "fit_b", "prep_c", "fit_c", "report"]


@pytest.fixture(scope="module")
def fanout_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fanout_project(tmp_path_factory.mktemp("fanrerun") / "p")


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "marker"
    monkeypatch.setenv(MARKER_VAR, str(path))
    return path


@pytest.fixture
def fan_invoke(
    invoke: Invoke,
    fanout_project: Path,
    marker: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_functions: Callable[[], None],
) -> Invoke:
    """The consumer handler on the fan-out project, fanning out whatever the shape allows
    (its nodes take milliseconds)."""
    monkeypatch.setenv("KEDRO_PROJECT_PATH", str(fanout_project))
    monkeypatch.setenv("FAN_OUT_MIN_GROUP_SECONDS", "0")
    fresh_functions()
    return invoke


def _receive(aws: Aws, wanted: int) -> list[dict[str, Any]]:
    """``wanted`` messages from the queue, taken off it (moto's execution sends them from its
    own thread: each receive waits up to a second)."""
    taken: list[dict[str, Any]] = []
    for _ in range(30):
        if len(taken) >= wanted:
            break
        for message in aws.from_execution():
            aws.sqs.delete_message(
                QueueUrl=aws.resources.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
            taken.append(message)
    assert len(taken) == wanted, [m["Body"] for m in taken]
    return taken


def _keys(aws: Aws, prefix: str) -> list[str]:
    resp = aws.s3.list_objects_v2(Bucket=aws.resources.bucket, Prefix=prefix)
    return sorted(item["Key"] for item in resp.get("Contents", []))


def _data_files(aws: Aws) -> dict[str, bytes]:
    """The committed files under the data root (versions named VERSION), by key."""
    files = {}
    for key in _keys(aws, "data/data/"):
        parts = key.split("/")
        if len(parts) >= 3 and parts[-3] == parts[-1]:
            parts[-2] = "VERSION"
        body = aws.s3.get_object(Bucket=aws.resources.bucket, Key=key)["Body"].read()
        files["/".join(parts)] = body
    return files


def _retry(api_call: ApiCall, job_id: str) -> tuple[int, Any]:
    status, answer, _ = api_call(
        "POST", f"/api/v1/jobs/{job_id}/retry", user="u", body={"from_failure": True}
    )
    return status, answer


def _submit(store: ApiJobs) -> tuple[Job, str]:
    job = store.create(Job.new(pipeline_name="fragile", parameters={}, options={}, user_id="u"))
    return job, job.to_message().model_dump_json(exclude_none=True)


def _failed_in_b(invoke: Invoke, aws: Aws, store: ApiJobs, marker: Path) -> Job:
    """A ``fragile`` job whose branches a and c complete before b fails (in that order, so
    which groups completed is known), then discarded by the execution."""
    marker.touch()
    job, body = _submit(store)
    assert invoke(body) == {"batchItemFailures": []}
    first = _receive(aws, 3)
    by_group = {json.loads(m["Body"])["group"]: m["Body"] for m in first}
    for group in ("g1", "g3", "g2"):
        assert invoke(by_group[group]) == {"batchItemFailures": []}
    failed = drain(invoke, aws, store, job.id)
    marker.unlink()
    assert failed.status is JobStatus.FAILED, failed.error_message
    assert failed.error_message == "RuntimeError: the marker file is there (node: fit_b)"
    return failed


def _handovers(aws: Aws, job_id: str) -> list[str]:
    """The groups whose complete (signed) hand-over the job's staging holds."""
    kept = _keys(aws, f"data/.kedro-jobs/groups/{job_id}/")
    return sorted(k.split("/")[-2] for k in kept if k.endswith("/handover.json"))


def test_a_rerun_from_failure_runs_only_the_groups_that_did_not_complete(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, api_call: ApiCall, record: Path, marker: Path
) -> None:
    whole, body = _submit(store)
    assert fan_invoke(body) == {"batchItemFailures": []}
    uninterrupted = drain(fan_invoke, aws, store, whole.id)
    assert uninterrupted.status is JobStatus.COMPLETED, uninterrupted.error_message
    whole_files = _data_files(aws)
    assert len(whole_files) == 2  # the table, and model_a (versioned)
    for key in _keys(aws, "data/data/"):
        aws.s3.delete_object(Bucket=aws.resources.bucket, Key=key)
    record.unlink()

    failed = _failed_in_b(fan_invoke, aws, store, marker)
    assert executions(record) == dict.fromkeys(EVERY_NODE[:-1], 1)
    assert failed.groups is not None
    assert {g: run.status for g, run in failed.groups.items()} == {
        "g1": "completed", "g2": "failed", "g3": "completed", "g4": "pending",
    }  # fmt: skip
    # Kept: the completed groups' hand-overs, nothing committed, until reusable_until.
    assert _handovers(aws, failed.id) == ["g1", "g3"]
    assert not _keys(aws, "data/data/")
    assert failed.checkpoint == f"s3://{aws.resources.bucket}/data/.kedro-jobs/groups/{failed.id}"
    assert failed.reusable_until is not None
    assert timedelta(days=6) < failed.reusable_until - utcnow() <= timedelta(days=7)

    status, rerun = _retry(api_call, failed.id)
    assert status == 202, rerun
    assert rerun["retry_of"] == failed.id and rerun["reused_from"] == failed.id
    assert rerun["status"] == "pending"
    assert rerun["reuse_plan"]["reused"] == {"g1": failed.id, "g3": failed.id}
    [message] = _receive(aws, 1)  # the API's message
    assert fan_invoke(message["Body"]) == {"batchItemFailures": []}
    started = store.get(rerun["id"])
    assert started is not None and started.groups is not None and started.fan_out is not None
    assert {g: run.status for g, run in started.groups.items()} == {
        "g1": "reused", "g2": "pending", "g3": "reused", "g4": "pending",
    }  # fmt: skip
    assert started.fan_out["save_version"] != (failed.fan_out or {})["save_version"]
    done = drain(fan_invoke, aws, store, rerun["id"])

    assert done.status is JobStatus.COMPLETED, done.error_message
    # Branches a and c did not run again: b and the join ran.
    assert executions(record) == {**dict.fromkeys(EVERY_NODE, 1), "prep_b": 2, "fit_b": 2}
    assert [(n.name, n.status, n.group) for n in done.nodes or []] == [
        ("prep_a", "reused", "g1"),
        ("fit_a", "reused", "g1"),
        ("prep_c", "reused", "g3"),
        ("fit_c", "reused", "g3"),
        ("prep_b", "completed", "g2"),
        ("fit_b", "completed", "g2"),
        ("report", "completed", "g4"),
    ]  # by level, a level's reused nodes first (as a one-worker rerun's)
    assert done.progress is not None
    assert (done.progress.completed_nodes, done.progress.total_nodes) == (7, 7)
    # An uninterrupted run's results and files; reused a's model in the rerun's version.
    assert done.results == uninterrupted.results
    assert _data_files(aws) == whole_files
    version = (done.fan_out or {})["save_version"]
    assert _keys(aws, "data/data/06_models/") == [
        f"data/data/06_models/model_a.pickle/{version}/model_a.pickle"
    ]
    # Only the groups it ran were sent (the reused ones cost no transition).
    sfn = boto3.client("stepfunctions", endpoint_url=aws.sqs.meta.endpoint_url)
    machine = aws.resources.function_env()["FAN_OUT_STATE_MACHINE_ARN"]
    arn = machine.replace(":stateMachine:", ":execution:") + f":{done.id}"
    history = sfn.get_execution_history(executionArn=arn)["events"]
    entered = [e for e in history if e["type"].endswith("StateEntered")]
    assert len(entered) == transitions(done.fan_out or {}) == 6
    # Its own staging is gone; the failed job's kept hand-overs stay until they expire, as a
    # one-worker job's kept checkpoint does.
    assert not _keys(aws, f"data/.kedro-jobs/groups/{done.id}")
    assert _handovers(aws, failed.id) == ["g1", "g3"]
    assert done.reusable_until is None
    status, again = _retry(api_call, done.id)
    assert status == 409 and "it completed, so no node is left to run" in again["detail"]


def test_a_rerun_that_fails_again_keeps_what_it_may_be_rerun_from(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, api_call: ApiCall, record: Path, marker: Path
) -> None:
    """The rerun's message and its group's delivered twice (SQS delivers at least once): one
    execution, the group run once. It fails again (the marker is back): it keeps what it
    reused, and a rerun of it reuses that."""
    failed = _failed_in_b(fan_invoke, aws, store, marker)
    status, rerun = _retry(api_call, failed.id)
    assert status == 202, rerun
    marker.touch()
    [message] = _receive(aws, 1)
    assert fan_invoke(message["Body"]) == {"batchItemFailures": []}
    assert fan_invoke(message["Body"]) == {"batchItemFailures": []}  # its lease is live
    [group] = _receive(aws, 1)
    assert json.loads(group["Body"])["group"] == "g2"  # only the group not reused
    assert fan_invoke(group["Body"]) == {"batchItemFailures": []}
    assert fan_invoke(group["Body"]) == {"batchItemFailures": []}  # answered: dropped
    again = drain(fan_invoke, aws, store, rerun["id"])
    marker.unlink()

    assert again.status is JobStatus.FAILED
    assert executions(record)["fit_b"] == 2  # once in each job
    assert again.groups is not None and again.groups["g2"].runs == 1
    # Nothing of its own completed: it offers what it reused, as long as the failed job does.
    assert not _keys(aws, f"data/.kedro-jobs/groups/{again.id}")
    assert again.reusable_until == failed.reusable_until

    status, second = _retry(api_call, again.id)
    assert status == 202, second
    assert second["retry_of"] == again.id and second["reused_from"] == failed.id
    assert second["reuse_plan"]["reused"] == {"g1": failed.id, "g3": failed.id}
    [message] = _receive(aws, 1)
    assert fan_invoke(message["Body"]) == {"batchItemFailures": []}
    done = drain(fan_invoke, aws, store, second["id"])
    assert done.status is JobStatus.COMPLETED, done.error_message
    assert done.results == {"summary": {"total": 9.0, "branches": 3}}
    assert executions(record) == {**dict.fromkeys(EVERY_NODE, 1), "prep_b": 3, "fit_b": 3}


def test_a_fanned_out_job_that_kept_nothing_usable_answers_409_saying_why(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, api_call: ApiCall, record: Path, marker: Path
) -> None:
    cancelled, body = _submit(store)
    assert fan_invoke(body) == {"batchItemFailures": []}
    store.request_cancel(cancelled.id, "u")
    assert drain(fan_invoke, aws, store, cancelled.id).status is JobStatus.CANCELLED
    status, answer = _retry(api_call, cancelled.id)
    assert status == 409
    assert answer["detail"] == (
        f"Job '{cancelled.id}' is cancelled; it cannot be rerun from failure: it kept no data "
        "to go on from (it ran fanned out and no group of it completed before it stopped, or "
        "it ended before such reruns existed); retry it without from_failure to run every "
        "node again"
    )
    assert not _keys(aws, f"data/.kedro-jobs/groups/{cancelled.id}")

    expired = _failed_in_b(fan_invoke, aws, store, marker)
    store.client.update_item(
        TableName=store.table_name,
        Key={"id": {"S": expired.id}},
        UpdateExpression="SET reusable_until = :t",
        ExpressionAttributeValues={":t": {"S": "2026-01-01T00:00:00.000000Z"}},
    )
    status, answer = _retry(api_call, expired.id)
    assert status == 409
    assert "the data it kept expired at 2026-01-01T00:00:00+00:00 (kept 7 days)" in answer["detail"]

    gone = _failed_in_b(fan_invoke, aws, store, marker)
    for key in _keys(aws, f"data/.kedro-jobs/groups/{gone.id}/"):  # by hand, or S3's rule
        aws.s3.delete_object(Bucket=aws.resources.bucket, Key=key)
    status, answer = _retry(api_call, gone.id)
    assert status == 409
    assert f"the data it kept is gone from {gone.checkpoint}" in answer["detail"]
    assert aws.messages() == []  # no job was made


def test_a_discard_delivered_again_keeps_what_the_failed_job_kept(
    fan_invoke: Invoke,
    aws: Aws,
    store: ApiJobs,
    api_call: ApiCall,
    marker: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The discard's consumer ends the job, keeps the completed groups' hand-overs, then fails
    to answer the execution (Step Functions unavailable): SQS delivers the discard again, to
    a job already ended. What was kept stays, and the job may still be rerun from failure."""
    marker.touch()
    job, body = _submit(store)
    assert fan_invoke(body) == {"batchItemFailures": []}
    by_group = {json.loads(m["Body"])["group"]: m["Body"] for m in _receive(aws, 3)}
    for group in ("g1", "g3", "g2"):
        assert fan_invoke(by_group[group]) == {"batchItemFailures": []}
    [discard] = _receive(aws, 1)
    assert json.loads(discard["Body"])["fanout"] == "discard"

    answer = Coordinator.succeed
    calls: list[str] = []

    def unavailable_once(self: Coordinator, token: str, output: Any = None) -> None:
        calls.append(token)
        if len(calls) == 1:
            raise DependencyUnavailable("Step Functions", "ServiceUnavailable")
        answer(self, token, output)

    monkeypatch.setattr(Coordinator, "succeed", unavailable_once)
    assert fan_invoke(discard["Body"])["batchItemFailures"]  # comes back
    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert _handovers(aws, job.id) == ["g1", "g3"]
    assert fan_invoke(discard["Body"]) == {"batchItemFailures": []}  # answered this time
    assert len(calls) == 2
    marker.unlink()

    assert _handovers(aws, job.id) == ["g1", "g3"]
    again = store.get(job.id)
    assert again is not None and again.reusable_until == failed.reusable_until
    status, rerun = _retry(api_call, job.id)
    assert status == 202 and rerun["reuse_plan"]["reused"] == {"g1": job.id, "g3": job.id}
