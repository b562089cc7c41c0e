"""Rerun from failure through the API and the consumer's Lambda handler (real API Gateway and
SQS events, a real Kedro project, moto, an S3 data root): a job whose third node fails keeps
what its first two made; ``POST /jobs/{id}/retry {"from_failure": true}`` makes a job that
runs only the failed node and the one after it, with the results and committed files of an
uninterrupted run. A job with nothing to reuse answers 409; a bad body 422."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kedro_jobs.core.models import Job, utcnow
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ApiJobs
from kedro_jobs_local.counting_project import executions
from tests.support.jobs import submitted
from tests.support.rerun_project import MARKER_VAR, write_rerun_project

from .conftest import ApiCall, Aws, Invoke

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kedro_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The consumer's project here: the rerun project (its third node fails while a marker
    file exists)."""
    return write_rerun_project(tmp_path_factory.mktemp("rerun") / "project")


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "marker"
    monkeypatch.setenv(MARKER_VAR, str(path))
    return path


def _run_next(invoke: Invoke, aws: Aws) -> None:
    """Deliver the one message on the queue to the consumer."""
    [message] = aws.messages()
    aws.sqs.delete_message(QueueUrl=aws.resources.queue_url, ReceiptHandle=message["ReceiptHandle"])
    assert invoke(message["Body"], timeout=60) == {"batchItemFailures": []}


def _ended(store: ApiJobs, job_id: str) -> Job:
    job = store.get(job_id)
    assert job is not None and job.status.terminal, job
    return job


def _data_files(aws: Aws) -> dict[str, bytes]:
    """The committed files under the data root (versions named VERSION), by key."""
    bucket = aws.resources.bucket
    listed = aws.s3.list_objects_v2(Bucket=bucket, Prefix="data/data/").get("Contents", [])
    files = {}
    for obj in listed:
        parts = obj["Key"].split("/")
        if len(parts) >= 3 and parts[-3] == parts[-1]:
            parts[-2] = "VERSION"
        files["/".join(parts)] = aws.s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return files


def _retry(api_call: ApiCall, job_id: str, body: Any = None) -> tuple[int, Any]:
    status, answer, _ = api_call("POST", f"/api/v1/jobs/{job_id}/retry", user="u", body=body)
    return status, answer


def _failed_job(invoke: Invoke, store: ApiJobs, marker: Path) -> Job:
    marker.touch()
    job, body = submitted(store, "rerun")
    assert invoke(body, timeout=60) == {"batchItemFailures": []}
    marker.unlink()
    failed = _ended(store, job.id)
    assert failed.status is JobStatus.FAILED
    return failed


def test_a_rerun_from_failure_runs_only_what_did_not_complete(
    invoke: Invoke, store: ApiJobs, aws: Aws, api_call: ApiCall, record: Path, marker: Path
) -> None:
    whole, body = submitted(store, "rerun")
    assert invoke(body, timeout=60) == {"batchItemFailures": []}
    uninterrupted = _ended(store, whole.id)
    assert uninterrupted.status is JobStatus.COMPLETED
    whole_files = _data_files(aws)
    assert len(whole_files) == 3  # table, model (versioned), scores
    record.unlink()

    failed = _failed_job(invoke, store, marker)
    assert failed.error_message == "RuntimeError: the marker file is there (node: fragile)"
    assert (
        failed.checkpoint
        == f"s3://{aws.resources.bucket}/data/.kedro-jobs/checkpoints/{failed.id}/1"
    )
    assert failed.reusable_until is not None
    assert timedelta(days=6) < failed.reusable_until - utcnow() <= timedelta(days=7)
    assert executions(record) == {"load": 1, "prepare": 1, "fragile": 1}

    status, rerun = _retry(api_call, failed.id, {"from_failure": True})

    assert status == 202, rerun
    assert rerun["retry_of"] == failed.id and rerun["reused_from"] == failed.id
    assert rerun["parameters"] == failed.parameters and rerun["status"] == "pending"
    _run_next(invoke, aws)
    done = _ended(store, rerun["id"])
    assert done.status is JobStatus.COMPLETED, done.error_message
    # The first two nodes did not run again.
    assert executions(record) == {"load": 1, "prepare": 1, "fragile": 2, "report": 1}
    assert [(n.name, n.status) for n in done.nodes or []] == [
        ("load", "reused"),
        ("prepare", "reused"),
        ("fragile", "completed"),
        ("report", "completed"),
    ]
    assert done.progress is not None
    assert (done.progress.completed_nodes, done.progress.total_nodes) == (4, 4)
    # What an uninterrupted run gives: its results, and the same committed files.
    assert done.results == uninterrupted.results
    assert _data_files(aws) == whole_files
    assert {o.name for o in done.outputs or []} == {"table", "model", "scores"}
    # The rerun completed: it kept nothing; the failed job's data stays until it expires.
    assert done.reusable_until is None
    status, again = _retry(api_call, done.id, {"from_failure": True})
    assert status == 409 and "it completed, so no node is left to run" in again["detail"]


def test_a_job_with_nothing_kept_answers_409_saying_why(
    invoke: Invoke, store: ApiJobs, aws: Aws, api_call: ApiCall, record: Path, marker: Path
) -> None:
    completed, body = submitted(store, "rerun")
    assert invoke(body, timeout=60) == {"batchItemFailures": []}
    first_node_failed, body = submitted(store, "rerun", x="five")  # fails in its first node
    assert invoke(body, timeout=60) == {"batchItemFailures": []}
    assert _ended(store, first_node_failed.id).status is JobStatus.FAILED

    status, answer = _retry(api_call, completed.id, {"from_failure": True})
    assert status == 409
    assert answer["detail"] == (
        f"Job '{completed.id}' is completed; it cannot be rerun from failure: it completed, "
        "so no node is left to run; retry it without from_failure to run every node again"
    )
    status, answer = _retry(api_call, first_node_failed.id, {"from_failure": True})
    assert status == 409 and "it kept no data to go on from" in answer["detail"]
    # A plain retry of either is what it always was.
    status, plain = _retry(api_call, completed.id)
    assert status == 202 and plain["retry_of"] == completed.id and plain.get("reused_from") is None
    status, plain = _retry(api_call, first_node_failed.id, {"from_failure": False})
    assert status == 202 and plain.get("reused_from") is None and not plain.get("checkpoint")


def test_kept_data_expired_or_gone_answers_409(
    invoke: Invoke, store: ApiJobs, aws: Aws, api_call: ApiCall, record: Path, marker: Path
) -> None:
    failed = _failed_job(invoke, store, marker)
    assert failed.reusable_until is not None

    # Seven days later (the record's time moved back, as the clock would move on).
    store.client.update_item(
        TableName=store.table_name,
        Key={"id": {"S": failed.id}},
        UpdateExpression="SET reusable_until = :t",
        ExpressionAttributeValues={":t": {"S": "2026-01-01T00:00:00.000000Z"}},
    )
    status, answer = _retry(api_call, failed.id, {"from_failure": True})
    assert status == 409
    assert "the data it kept expired at 2026-01-01T00:00:00+00:00 (kept 7 days)" in answer["detail"]

    other = _failed_job(invoke, store, marker)
    prefix = f"data/.kedro-jobs/checkpoints/{other.id}/"
    listed = aws.s3.list_objects_v2(Bucket=aws.resources.bucket, Prefix=prefix)["Contents"]
    for obj in listed:  # removed by hand (or by the lifecycle rule)
        aws.s3.delete_object(Bucket=aws.resources.bucket, Key=obj["Key"])
    status, answer = _retry(api_call, other.id, {"from_failure": True})
    assert status == 409 and f"the data it kept is gone from {other.checkpoint}" in answer["detail"]
    assert aws.messages() == []  # no job was made


@pytest.mark.parametrize(
    "body",
    [{"from_failure": "yes"}, {"from_failure": 1}, {"from_fail": True}, [True], "from_failure"],
)
def test_a_bad_retry_body_is_422_and_changes_nothing(
    invoke: Invoke, store: ApiJobs, aws: Aws, api_call: ApiCall, marker: Path, body: Any
) -> None:
    failed = _failed_job(invoke, store, marker)
    before = len(aws.items())

    status, answer = _retry(api_call, failed.id, body)

    assert status == 422, answer
    assert len(aws.items()) == before and aws.messages() == []


def test_only_the_owner_may_rerun_a_job(
    invoke: Invoke, store: ApiJobs, aws: Aws, api_call: ApiCall, marker: Path
) -> None:
    failed = _failed_job(invoke, store, marker)

    status, answer, _ = api_call(
        "POST", f"/api/v1/jobs/{failed.id}/retry", user="mallory", body={"from_failure": True}
    )

    assert status == 404 and answer["detail"] == f"Job '{failed.id}' not found"
    assert aws.messages() == []


def test_a_duplicate_delivery_of_a_failed_job_leaves_its_kept_data(
    invoke: Invoke, store: ApiJobs, aws: Aws, record: Path, marker: Path
) -> None:
    marker.touch()
    job, body = submitted(store, "rerun")
    assert invoke(body, timeout=60) == {"batchItemFailures": []}
    prefix = f"data/.kedro-jobs/checkpoints/{job.id}/"
    kept = aws.s3.list_objects_v2(Bucket=aws.resources.bucket, Prefix=prefix)["Contents"]

    assert invoke(body, timeout=60) == {"batchItemFailures": []}  # SQS delivered it again

    assert _ended(store, job.id).status is JobStatus.FAILED
    assert executions(record) == {"load": 1, "prepare": 1, "fragile": 1}
    again = aws.s3.list_objects_v2(Bucket=aws.resources.bucket, Prefix=prefix)["Contents"]
    assert [o["Key"] for o in again] == [o["Key"] for o in kept]


def test_a_rerun_that_fails_again_can_itself_be_rerun(
    invoke: Invoke, store: ApiJobs, aws: Aws, api_call: ApiCall, record: Path, marker: Path
) -> None:
    failed = _failed_job(invoke, store, marker)
    marker.touch()  # not fixed yet: the rerun fails in the same node
    status, rerun = _retry(api_call, failed.id, {"from_failure": True})
    assert status == 202
    _run_next(invoke, aws)
    again = _ended(store, rerun["id"])
    assert again.status is JobStatus.FAILED
    assert again.checkpoint == failed.checkpoint
    assert again.reusable_until == failed.reusable_until
    marker.unlink()

    status, fixed = _retry(api_call, again.id, {"from_failure": True})

    assert status == 202, fixed
    assert fixed["retry_of"] == again.id and fixed["reused_from"] == failed.id
    _run_next(invoke, aws)
    done = _ended(store, fixed["id"])
    assert done.status is JobStatus.COMPLETED, done.error_message
    assert executions(record) == {"load": 1, "prepare": 1, "fragile": 3, "report": 1}
    assert [n.status for n in done.nodes or []] == ["reused", "reused", "completed", "completed"]
