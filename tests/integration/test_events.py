"""Job events on EventBridge, against the moto server: a rule on the default bus routes
`source: kedro-jobs` to an SQS queue, as docs/events.md tells users to; jobs submitted
through the API handler and run by the consumer handler publish each of their states."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from kedro_jobs.consumer import handler as consumer_handler
from kedro_jobs.core.events import DETAIL_TYPE, INTERNAL_FIELDS, SOURCE, EventBridgeEvents
from kedro_jobs.core.queue import JobQueue
from kedro_jobs_local.counting_project import write_project
from kedro_jobs_local.lambda_context import LocalContext
from kedro_jobs_local.lambda_events import sqs_event
from kedro_jobs_local.moto_server import MotoServer
from tests.support.containers import reset_singletons

from .conftest import ApiCall, Aws, Invoke


@pytest.fixture(scope="module")
def kedro_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("project"))


class EventTap:
    """A rule on the default bus whose target is an SQS queue: what a user sets up."""

    def __init__(self, endpoint_url: str) -> None:
        self.events = boto3.client("events", endpoint_url=endpoint_url)
        self.sqs = boto3.client("sqs", endpoint_url=endpoint_url)
        name = f"job-events-{uuid.uuid4().hex[:8]}"
        self.rule = name
        self.queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.events.put_rule(
            Name=name, EventBusName="default", EventPattern=json.dumps({"source": [SOURCE]})
        )
        self.events.put_targets(
            Rule=name, EventBusName="default", Targets=[{"Id": "queue", "Arn": arn}]
        )

    def received(self) -> list[dict[str, Any]]:
        """Every event the queue holds (each an EventBridge envelope), in arrival order."""
        out: list[dict[str, Any]] = []
        while True:
            resp = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            )
            messages = resp.get("Messages", [])
            if not messages:
                return out
            for message in messages:
                out.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    def of(self, job_id: str) -> list[dict[str, Any]]:
        return [e for e in self.received() if e["detail"]["id"] == job_id]

    def close(self) -> None:
        self.events.remove_targets(Rule=self.rule, EventBusName="default", Ids=["queue"])
        self.events.delete_rule(Name=self.rule, EventBusName="default")
        self.sqs.delete_queue(QueueUrl=self.queue_url)


@pytest.fixture
def tap(aws: Aws, moto_server: MotoServer) -> Iterator[EventTap]:
    tap = EventTap(moto_server.endpoint_url)
    yield tap
    tap.close()


Run = Callable[[str], dict[str, Any]]


@pytest.fixture
def run(aws: Aws, invoke: Invoke) -> Run:
    """Deliver the jobs queue's next message to the consumer handler (as Lambda would)."""

    def deliver(job_id: str) -> dict[str, Any]:
        messages = aws.messages()
        assert len(messages) == 1, messages
        assert json.loads(messages[0]["Body"])["job_id"] == job_id
        return invoke(messages[0]["Body"])

    return deliver


def _publisher_of_consumer() -> EventBridgeEvents:
    events = consumer_handler.consumer().store.events
    assert isinstance(events, EventBridgeEvents)
    return events


def _submit(api_call: ApiCall, pipeline: str, **parameters: Any) -> dict[str, Any]:
    status, job, _ = api_call(
        "POST", "/api/v1/jobs", body={"pipeline_name": pipeline, "parameters": parameters}
    )
    assert status == 202, job
    return dict(job)


def _states(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["detail"]["status"], e["detail"]["change"]) for e in events]


def _order_key(event: dict[str, Any]) -> tuple[str, int]:
    """The receiver's ordering docs/events.md advises: updated_at, then finished last."""
    status = event["detail"]["status"]
    return event["detail"]["updated_at"], {"pending": 0, "running": 1}.get(status, 2)


def test_a_jobs_events_arrive_in_the_order_of_its_states(
    api_call: ApiCall, run: Run, tap: EventTap
) -> None:
    job = _submit(api_call, "two_nodes", x=21)
    assert run(job["id"]) == {"batchItemFailures": []}
    events = tap.of(job["id"])
    states = _states(events)
    assert states[0] == ("pending", "state")
    assert states[1] == ("running", "state")
    assert states[-1] == ("completed", "state")
    assert set(states[2:-1]) <= {("running", "progress")}
    assert sorted(events, key=_order_key) == events
    for event in events:
        assert event["source"] == "kedro-jobs"
        assert event["detail-type"] == DETAIL_TYPE == "Job State Change"
    done = events[-1]["detail"]
    assert done["results"] == {"doubled": 42}
    assert done["pipeline_name"] == "two_nodes" and done["user_id"] == job["user_id"]
    assert done["execution_time"] > 0 and done["completed_at"] and done["started_at"]
    assert done["progress"] == {"total_nodes": 2, "completed_nodes": 2, "current_node": None}
    assert not INTERNAL_FIELDS & set(done)
    # The detail is the record the API shows, minus its bookkeeping, plus `change`.
    _, record, _ = api_call("GET", f"/api/v1/jobs/{job['id']}")
    shown = {k: v for k, v in record.items() if k not in INTERNAL_FIELDS}
    assert {k: v for k, v in done.items() if k != "change"} == shown
    publisher = _publisher_of_consumer()
    assert publisher.failed == 0 and publisher.published == len(events) - 1


def test_a_failed_job_publishes_its_failure(api_call: ApiCall, run: Run, tap: EventTap) -> None:
    job = _submit(api_call, "failing")
    assert run(job["id"]) == {"batchItemFailures": []}
    events = tap.of(job["id"])
    assert _states(events)[0] == ("pending", "state")
    assert _states(events)[-1] == ("failed", "state")
    assert events[-1]["detail"]["error_message"].startswith("ValueError: boom at 3")


def test_a_cancelled_job_publishes_its_cancel(api_call: ApiCall, tap: EventTap) -> None:
    job = _submit(api_call, "two_nodes")
    status, _, _ = api_call("POST", f"/api/v1/jobs/{job['id']}/cancel")
    assert status == 200
    events = tap.of(job["id"])
    assert _states(events) == [("pending", "state"), ("cancelled", "state")]
    assert events[-1]["detail"]["completed_at"]


def test_progress_events_are_throttled(api_call: ApiCall, run: Run, tap: EventTap) -> None:
    # Four progress reports within well under the interval: one is published.
    job = _submit(api_call, "slow", seconds=0.2)
    assert run(job["id"]) == {"batchItemFailures": []}
    states = _states(tap.of(job["id"]))
    assert states.count(("running", "progress")) == 1, states
    assert states[-1] == ("completed", "state")
    assert _publisher_of_consumer().throttled >= 1


def test_a_bus_that_does_not_exist_fails_no_job(
    api_call: ApiCall, run: Run, tap: EventTap, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = api_call.configure(event_bus_name="no-such-bus")
    monkeypatch.setenv("EVENT_BUS_NAME", "no-such-bus")
    reset_singletons()
    job = _submit(api_call, "two_nodes", x=1)
    assert run(job["id"]) == {"batchItemFailures": []}
    _, record, _ = api_call("GET", f"/api/v1/jobs/{job['id']}")
    assert record["status"] == "completed"
    assert tap.of(job["id"]) == []
    api_events = services.store.events
    assert isinstance(api_events, EventBridgeEvents)
    assert api_events.failed == 1 and api_events.published == 0  # its creation
    consumer_events = _publisher_of_consumer()
    assert consumer_events.failed >= 2 and consumer_events.published == 0  # started, ended


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_events_endpoint_that_is_down_fails_no_job(
    api_call: ApiCall,
    run: Run,
    tap: EventTap,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", f"http://127.0.0.1:{_closed_port()}")
    services = api_call.configure()
    job = _submit(api_call, "two_nodes", x=1)
    assert run(job["id"]) == {"batchItemFailures": []}
    _, record, _ = api_call("GET", f"/api/v1/jobs/{job['id']}")
    assert record["status"] == "completed"
    assert tap.of(job["id"]) == []
    api_events = services.store.events
    assert isinstance(api_events, EventBridgeEvents) and api_events.failed == 1
    assert _publisher_of_consumer().failed >= 2
    logged = [r for r in caplog.records if r.getMessage() == "job event not published"]
    assert {getattr(r, "job_id", None) for r in logged} == {job["id"]}


def test_the_dead_letter_handler_publishes_the_failure_it_writes(
    api_call: ApiCall, aws: Aws, tap: EventTap
) -> None:
    from kedro_jobs.dead_letters import handler as dlq_handler

    job = _submit(api_call, "two_nodes")
    body = aws.messages()[0]["Body"]
    # The dead-letter handler's store is built in this test's fresh container (clean_stack).
    result = dlq_handler.handler(sqs_event(body), LocalContext(30, "DeadLetterFunction"))
    assert result == {"batchItemFailures": []}
    events = tap.of(job["id"])
    assert _states(events) == [("pending", "state"), ("failed", "state")]
    assert "dead-lettered" in events[-1]["detail"]["error_message"]


def test_a_submit_publishes_its_created_event_once_the_message_is_sent(
    api_call: ApiCall, tap: EventTap, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its event is off the job's path: a consumer may claim the job as soon as it is sent.
    services = api_call.configure()
    published_at_send: list[int] = []
    send = JobQueue.send

    def watched(queue: JobQueue, message: Any) -> str:
        assert isinstance(services.store.events, EventBridgeEvents)
        published_at_send.append(services.store.events.published)
        return send(queue, message)

    monkeypatch.setattr(JobQueue, "send", watched)
    job = _submit(api_call, "two_nodes", x=1)
    assert published_at_send == [0]
    assert _states(tap.of(job["id"])) == [("pending", "state")]
