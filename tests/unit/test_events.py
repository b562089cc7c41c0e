"""The EventBridge publisher's events: their shape, their size, throttling and failures
(a fake client; tests/integration/test_events.py publishes through moto)."""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from kedro_jobs.core import events
from kedro_jobs.core.events import (
    DETAIL_TYPE,
    FAILURE_MESSAGE,
    INTERNAL_FIELDS,
    MAX_ENTRY_BYTES,
    SOURCE,
    EventBridgeEvents,
    NoEvents,
    entry,
    entry_size,
    events_from_settings,
)
from kedro_jobs.core.models import Job, Progress
from kedro_jobs.core.settings import Settings
from kedro_jobs.core.states import JobStatus


def _job(**changes: Any) -> Job:
    job = Job.new(pipeline_name="p", parameters={"x": 1}, options={}, user_id="u")
    return job.model_copy(update=changes)


class FakeClient:
    def __init__(self, fail: BaseException | None = None, failed_entries: bool = False) -> None:
        self.entries: list[dict[str, Any]] = []
        self.fail = fail
        self.failed_entries = failed_entries
        self.requests = 0

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.requests += 1
        if self.fail is not None:
            raise self.fail
        self.entries.extend(Entries)
        if self.failed_entries:
            return {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}],
            }
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}

    def details(self) -> list[dict[str, Any]]:
        return [json.loads(e["Detail"]) for e in self.entries]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_no_bus_means_nothing_is_published() -> None:
    assert isinstance(events_from_settings(Settings(event_bus_name="")), NoEvents)
    publisher = events_from_settings(Settings(event_bus_name="default"))
    assert isinstance(publisher, EventBridgeEvents) and publisher.bus == "default"


def test_the_entry_carries_the_public_fields_and_not_the_bookkeeping() -> None:
    job = _job(
        status=JobStatus.RUNNING,
        lease_expires_at=123.0,
        handed_off=True,
        continuations=2,
        dispatch_due=5.0,
        checkpoint="s3://b/checkpoints/x",
        progress=Progress(total_nodes=3, completed_nodes=1, current_node="n"),
    )
    out = entry(job, "state", "my-bus")
    assert out["Source"] == SOURCE == "kedro-jobs"
    assert out["DetailType"] == DETAIL_TYPE == "Job State Change"
    assert out["EventBusName"] == "my-bus"
    detail = json.loads(out["Detail"])
    assert not INTERNAL_FIELDS & set(detail)
    public = set(Job.model_fields) - INTERNAL_FIELDS
    assert set(detail) == public | {"change"}
    assert detail["change"] == "state"
    assert detail["status"] == "running" and detail["id"] == job.id
    assert detail["progress"] == {"total_nodes": 3, "completed_nodes": 1, "current_node": "n"}
    assert detail["updated_at"] == job.model_dump(mode="json")["updated_at"]
    assert "omitted" not in detail


def test_a_progress_event_is_timed_at_its_write() -> None:
    job = _job(status=JobStatus.RUNNING)
    assert job.updated_at is not None
    later = job.updated_at + timedelta(seconds=7)
    detail = json.loads(entry(job, "progress", "b", now=later)["Detail"])
    assert detail["change"] == "progress"
    assert datetime.fromisoformat(detail["updated_at"]) == later
    # Never earlier than the record's own time.
    earlier = job.updated_at - timedelta(seconds=7)
    detail = json.loads(entry(job, "progress", "b", now=earlier)["Detail"])
    assert datetime.fromisoformat(detail["updated_at"]) == job.updated_at


def test_large_results_are_left_out_and_named() -> None:
    big = {"rows": ["x" * 1000] * 300}  # ~300 KB: over the entry limit
    job = _job(status=JobStatus.COMPLETED, results=big)
    out = entry(job, "state", "b")
    assert entry_size(out) <= MAX_ENTRY_BYTES
    detail = json.loads(out["Detail"])
    assert "results" not in detail
    assert detail["omitted"] == ["results"]
    assert detail["parameters"] == {"x": 1}  # what fits stays


def test_results_that_fit_are_kept() -> None:
    results = {"rows": ["x" * 1000] * 200}  # ~200 KB: within the limit
    out = entry(_job(status=JobStatus.COMPLETED, results=results), "state", "b")
    detail = json.loads(out["Detail"])
    assert detail["results"] == results and "omitted" not in detail


def test_more_is_left_out_only_while_the_event_is_still_too_large() -> None:
    job = _job(
        status=JobStatus.COMPLETED,
        results={"r": "y" * 200_000},
        parameters={"p": "z" * 300_000},
    )
    detail = json.loads(entry(job, "state", "b")["Detail"])
    assert detail["omitted"] == ["results", "parameters"]
    assert "results" not in detail and "parameters" not in detail


def test_entry_size_counts_what_eventbridge_counts() -> None:
    out = {"Source": "abc", "DetailType": "de", "Detail": '{"é":1}', "Resources": ["r1"]}
    assert entry_size(out) == 3 + 2 + len('{"é":1}'.encode()) + 2
    assert entry_size({**out, "Time": datetime.now(UTC)}) == entry_size(out) + 14


def test_progress_events_are_throttled_per_job() -> None:
    client, clock = FakeClient(), Clock()
    publisher = EventBridgeEvents("b", client=client, clock=clock)
    one, two = _job(status=JobStatus.RUNNING), _job(status=JobStatus.RUNNING)
    publisher.progressed(one)
    publisher.progressed(two)  # another job: its own interval
    clock.now += 1
    publisher.progressed(one)  # dropped
    publisher.changed(one)  # a state change always goes
    clock.now += events.PROGRESS_INTERVAL_SECONDS
    publisher.progressed(one)
    ids = [(d["id"], d["change"]) for d in client.details()]
    assert ids == [
        (one.id, "progress"),
        (two.id, "progress"),
        (one.id, "state"),
        (one.id, "progress"),
    ]
    assert (publisher.published, publisher.throttled, publisher.failed) == (4, 1, 0)


@pytest.mark.parametrize(
    "client",
    [
        FakeClient(fail=ClientError({"Error": {"Code": "AccessDenied"}}, "PutEvents")),
        FakeClient(failed_entries=True),
        FakeClient(fail=RuntimeError("unexpected")),
    ],
    ids=["client-error", "failed-entry", "unexpected"],
)
def test_a_failure_is_logged_and_counted_never_raised(
    client: FakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = EventBridgeEvents("b", client=client)
    job = _job()
    with caplog.at_level(logging.WARNING, logger=events.__name__):
        publisher.changed(job)
        publisher.changed(job)
    assert (publisher.published, publisher.failed) == (0, 2)
    records = [r for r in caplog.records if r.getMessage() == FAILURE_MESSAGE]
    assert len(records) == 2
    assert records[0].job_id == job.id  # type: ignore[attr-defined]
    assert records[0].reason  # type: ignore[attr-defined]


def test_an_unreachable_bus_pauses_publishing_for_a_while(
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, clock = FakeClient(fail=EndpointConnectionError(endpoint_url="http://x")), Clock()
    publisher = EventBridgeEvents("b", client=client, clock=clock)
    publisher.changed(_job())
    client.fail = None
    publisher.changed(_job())  # not tried: the bus was unreachable a moment ago
    assert client.entries == [] and publisher.failed == 2
    clock.now += events.PAUSE_AFTER_UNREACHABLE_SECONDS
    publisher.changed(_job())
    assert len(client.entries) == 1 and publisher.published == 1
    # Each failure is a CloudWatch metric (an EMF line on stdout).
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert [m[events.FAILURE_METRIC] for m in emf] == [[1.0], [1.0]]


def test_an_event_too_large_even_without_its_large_fields_is_a_counted_failure() -> None:
    client = FakeClient()
    publisher = EventBridgeEvents("b", client=client)
    publisher.changed(_job(error_message="e" * (MAX_ENTRY_BYTES + 1)))
    assert client.entries == [] and publisher.failed == 1


def test_a_background_publisher_sends_a_jobs_events_together_and_in_order() -> None:
    client = FakeClient()
    publisher = EventBridgeEvents("b", client=client, background=True)
    publisher.batch_window = 60.0  # only the flush sends them: one request
    job = _job()
    publisher.changed(job.model_copy(update={"status": JobStatus.RUNNING}))
    publisher.progressed(job.model_copy(update={"status": JobStatus.RUNNING}))
    publisher.changed(job.model_copy(update={"status": JobStatus.COMPLETED}))
    assert events.flush(publisher) is None and publisher.flush(timeout=5)
    assert [(d["status"], d["change"]) for d in client.details()] == [
        ("running", "state"),
        ("running", "progress"),
        ("completed", "state"),
    ]
    assert (publisher.published, publisher.failed) == (3, 0)
    assert client.requests == 1


def test_a_background_publisher_sends_at_most_ten_events_a_request() -> None:
    client = FakeClient()
    publisher = EventBridgeEvents("b", client=client, background=True)
    for _ in range(25):
        publisher.changed(_job())
    assert publisher.flush(timeout=5)
    assert publisher.published == 25 and len(client.entries) == 25
    assert client.requests >= 3


def test_a_background_publishers_failures_are_counted_never_raised() -> None:
    client = FakeClient(fail=ClientError({"Error": {"Code": "AccessDenied"}}, "PutEvents"))
    publisher = EventBridgeEvents("b", client=client, background=True)
    publisher.changed(_job())
    publisher.changed(_job())
    assert publisher.flush(timeout=5)
    assert (publisher.published, publisher.failed) == (0, 2)


def test_no_events_or_a_synchronous_publisher_have_nothing_to_flush() -> None:
    client = FakeClient()
    publisher = EventBridgeEvents("b", client=client)
    publisher.changed(_job())
    assert len(client.entries) == 1  # sent before changed() returned
    events.flush(publisher)
    events.flush(NoEvents())
    assert publisher.published == 1


def test_a_process_forked_from_a_background_publisher_starts_with_its_locks_free() -> None:
    client = FakeClient()
    publisher = EventBridgeEvents("b", client=client, background=True)
    publisher.changed(_job())
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: exits 0 if it could take the lock
        os._exit(0 if publisher._send_lock.acquire(timeout=2) else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    publisher.changed(_job())
    assert publisher.flush(timeout=5) and publisher.published == 2


def test_two_jobs_forking_at_once_beside_a_background_publisher_both_go_on() -> None:
    # Two consumers' jobs in one container fork at the same moment (the fork isolation):
    # neither may wait forever on the publisher's send lock.
    publisher = EventBridgeEvents("b", client=FakeClient(), background=True)
    publisher.changed(_job())

    def fork_and_wait() -> int:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os._exit(0)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(fork_and_wait) for _ in range(40)]
        assert [f.result(timeout=20) for f in futures] == [0] * 40
    publisher.changed(_job())
    assert publisher.flush(timeout=5) and publisher.published == 2
