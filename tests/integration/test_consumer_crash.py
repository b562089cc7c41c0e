"""A consumer that dies mid-run (SIGKILL, as Lambda's timeout or an out-of-memory kill would):
its job's code dies with it, the redelivered message claims the job again once the lease has
expired, and a job that kills every consumer ends failed after the maximum attempts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kedro_jobs.core.models import Job
from kedro_jobs.core.settings import get_settings
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ApiJobs
from kedro_jobs_local.counting_project import executions
from kedro_jobs_local.lambda_events import sqs_event
from tests.support.jobs import submitted

# Lambda's init phase first (the Kedro project bootstrapped, as make dev's pollers do), so the
# invocation's time, and the lease taken from it, need not cover Kedro's start-up, which takes
# many seconds on a loaded machine.
CONSUMER = """
import json, sys
from kedro_jobs.consumer import handler
from kedro_jobs_local.lambda_context import LocalContext
handler.consumer().runner
print(json.dumps(handler.handler(json.loads(sys.argv[1]), LocalContext(float(sys.argv[2])))))
"""


def _consumer(event: dict[str, object], timeout: float, project: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "KEDRO_PROJECT_PATH": str(project), "TIMEOUT_MARGIN_SECONDS": "0.5"}
    return subprocess.Popen(
        [sys.executable, "-c", CONSUMER, json.dumps(event), str(timeout)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip


def _submitted(store: ApiJobs, pipeline: str, **params: object) -> tuple[Job, dict[str, object]]:
    job, body = submitted(store, pipeline, **params)
    return job, sqs_event(body, message_ids=[f"msg-{job.id}"])


def test_a_killed_consumer_is_replaced_and_the_job_completes(
    kedro_project: Path,
    record: Path,
    store: ApiJobs,
) -> None:
    job, event = _submitted(store, "slow", seconds=2)
    first = _consumer(event, timeout=6, project=kedro_project)
    deadline = time.monotonic() + 60
    while executions(record)["nap"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # mid-node: the consumer dies, its lease stays
    first.wait()
    running = store.get(job.id)
    assert running is not None and running.status is JobStatus.RUNNING
    assert running.lease_expires_at is not None
    time.sleep(max(0.0, running.lease_expires_at - time.time()) + 2.5)
    # The job's own code died with its consumer: the node never finished, nothing went on.
    assert executions(record) == {"start": 1, "nap": 1}
    second = _consumer(event, timeout=30, project=kedro_project)
    out, _ = second.communicate(timeout=60)
    assert json.loads(out.strip().splitlines()[-1]) == {"batchItemFailures": []}
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED and done.attempts == 2
    assert executions(record) == {"start": 2, "nap": 2, "finish": 1}


def test_a_job_that_kills_every_consumer_fails_after_max_attempts(
    kedro_project: Path,
    record: Path,
    store: ApiJobs,
) -> None:
    job, event = _submitted(store, "kills_consumer")
    attempts = get_settings().max_attempts
    for attempt in range(1, attempts + 1):
        # Long enough for a warm consumer on a loaded machine to reach the node; the lease
        # (and so the wait before the next attempt) is as long.
        consumer = _consumer(event, timeout=6, project=kedro_project)
        assert consumer.wait(timeout=60) == -signal.SIGKILL
        current = store.get(job.id)
        assert current is not None and current.attempts == attempt
        time.sleep(max(0.0, (current.lease_expires_at or 0) - time.time()) + 0.2)
    last = _consumer(event, timeout=30, project=kedro_project)
    out, _ = last.communicate(timeout=60)
    assert json.loads(out.strip().splitlines()[-1]) == {"batchItemFailures": []}
    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert f"gave up after {attempts} attempt(s)" in (failed.error_message or "")
    assert executions(record)["kill_consumer"] == attempts
