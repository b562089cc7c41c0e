"""Delivery through `make dev` with 3 consumers: bad messages leave the main queue at once, a
SIGKILLed consumer's job completes on another within minutes (lease, heartbeat, sweeper), a
job cancelled while its consumer was dead ends cancelled and its node never starts again, and
no job stays pending.

Twice: at the template's defaults (ConsumerTimeout 900 s, so the queue's visibility timeout is
5,400 s; a 60 s job lease; a sweep every minute), marked slow (`make test-slow`), and with the
same rules on short timings injected through the settings (JOB_LEASE_SECONDS) and `make dev
--sweep-every`, which `make test` runs in seconds."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kedro_jobs_local.counting_project import counting_stack_env, executions
from kedro_jobs_local.dev_stack import running_local_stack

from .conftest import TERMINAL, busy_consumers, until


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def _unknown(**fields: Any) -> str:
    """A bad body naming a job nobody made (issue 19: it sat on the main queue for 5 x the
    visibility timeout)."""
    return json.dumps({"version": 1, "job_id": "nobody-made-this", **fields})


# Bodies that can never succeed and name no job (or one that does not exist): 19 kinds.
BAD_BODIES = [
    _unknown(pipeline_name="two_nodes", surprise=1),
    _unknown(pipeline_name="two_nodes", parameters={"p": "x" * 70_000}),
    _unknown(pipeline_name="two_nodes", parameters=_nested(300)),
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
    json.dumps({"version": 1, "pipeline_name": "a b c"}),
    json.dumps({"version": 1, "pipeline_name": "x" * 10_000}),
    json.dumps({"version": 1, "pipeline_name": "two_nodes", "parameters": "x"}),
    json.dumps({"version": 1, "pipeline_name": "two_nodes", "surprise": 1}),
    json.dumps({"version": 1, "pipeline_name": "two_nodes", "job_id": "../../etc/passwd"}),
    json.dumps({"Type": "Notification", "Message": "not json either"}),
]


def _queue_depth(sqs: Any, queue_url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(attrs[name]) for name in names)


@dataclass(frozen=True)
class Timings:
    consumer_timeout: int  # the template's ConsumerTimeout parameter
    job_lease: int  # JOB_LEASE_SECONDS: a running job's claim, extended by its heartbeat
    sweep_every: float  # seconds between the sweeper's runs
    injected: bool  # False: the stack reads the lease and the schedule from its own defaults

    def stack_args(self) -> tuple[str, ...]:
        args = ("--consumer-timeout", str(self.consumer_timeout))
        return (*args, "--sweep-every", str(self.sweep_every)) if self.injected else args

    def env(self) -> dict[str, str]:
        return {"JOB_LEASE_SECONDS": str(self.job_lease)} if self.injected else {}


# The settings' 60 s lease and the template's rate(1 minute) schedule, as deployed.
TEMPLATE_DEFAULTS = Timings(consumer_timeout=900, job_lease=60, sweep_every=60, injected=False)
SHORT = Timings(consumer_timeout=60, job_lease=10, sweep_every=2, injected=True)
NAP = 10  # seconds: the node both jobs are in when their consumers are killed


@pytest.mark.parametrize(
    "timings",
    [
        pytest.param(TEMPLATE_DEFAULTS, marks=pytest.mark.slow, id="template-defaults"),
        pytest.param(SHORT, id="short-timings"),
    ],
)
def test_delivery_after_bad_messages_killed_consumers_and_a_cancel(
    tmp_path: Path, timings: Timings
) -> None:
    env, record = counting_stack_env(tmp_path, "delivery_project")
    with (
        running_local_stack(
            tmp_path / "dev.log",
            workers=3,
            env={**env, **timings.env()},
            args=timings.stack_args(),
        ) as stack,
        stack.client() as client,
    ):
        sqs = stack.aws("sqs")
        queue = sqs.get_queue_url(QueueName="kedro-jobs-queue")["QueueUrl"]
        visibility = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])
        # Six times the function's timeout (5,400 s at the default's).
        assert visibility["Attributes"]["VisibilityTimeout"] == str(6 * timings.consumer_timeout)

        def submit(pipeline: str, **params: object) -> str:
            body = {"pipeline_name": pipeline, "parameters": params}
            job_id: str = client.post("/api/v1/jobs", json=body).json()["id"]
            return job_id

        def job(job_id: str) -> dict[str, Any]:
            data: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()
            return data

        # 1. Bad bodies beside good jobs: all leave the main queue, the good ones complete.
        sent = time.monotonic()
        good = []
        for i, body in enumerate(BAD_BODIES):
            sqs.send_message(QueueUrl=queue, MessageBody=body)
            if i % 4 == 0:
                good.append(submit("two_nodes", x=3000 + i))
        until("bad bodies off the main queue", lambda: _queue_depth(sqs, queue) == 0, 60)
        poison_seconds = time.monotonic() - sent
        assert all(job(j)["status"] == "completed" for j in good)

        # 2. Two jobs mid-node; both consumers SIGKILLed; one job cancelled meanwhile.
        to_finish = submit("slow", x=4001, seconds=NAP)
        to_cancel = submit("slow", x=4002, seconds=NAP)
        until(
            "both naps started",
            lambda: executions(record)["nap 4001"] and executions(record)["nap 4002"],
            60,
        )
        busy = until("two busy consumers", lambda: len(busy_consumers(stack)) == 2, 10)
        assert busy
        for pid in busy_consumers(stack):
            os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        cancel = client.post(f"/api/v1/jobs/{to_cancel}/cancel")
        assert cancel.status_code == 200, cancel.text

        finished = until("the killed consumer's job ended", lambda: _ended(job, to_finish), 300)
        finish_seconds = time.monotonic() - killed
        cancelled = until("the cancelled job ended", lambda: _ended(job, to_cancel), 300)
        cancel_seconds = time.monotonic() - killed
        assert finished["status"] == "completed", finished
        assert finished["attempts"] == 2  # taken over by another claim
        # Within the lease, a sweep and the node run again: 180 s at the defaults.
        assert finish_seconds < timings.job_lease + timings.sweep_every + NAP + 50
        assert cancelled["status"] == "cancelled", cancelled
        # Another sweep and more (at the defaults, every minute): nothing of it runs again.
        time.sleep(timings.sweep_every + 5)
        assert job(to_cancel)["status"] == "cancelled"
        ran = executions(record)
        assert ran["nap 4001"] == 2 and ran["finish 4001"] == 1
        assert ran["nap 4002"] == 1 and ran["finish 4002"] == 0
        pending = client.get("/api/v1/jobs", params={"status": "pending", "limit": 100}).json()
        assert pending["jobs"] == []
        print(  # the figures for docs/reliability.md (run with -s)
            f"\nbad bodies off the main queue in {poison_seconds:.1f} s;"
            f" killed consumer's job completed {finish_seconds:.1f} s after the kill;"
            f" cancelled-while-dead job cancelled {cancel_seconds:.1f} s after the kill"
        )


def _ended(job: Callable[[str], dict[str, Any]], job_id: str) -> dict[str, Any] | None:
    try:
        record = job(job_id)
    except httpx.HTTPError:
        return None
    return record if record["status"] in TERMINAL else None
