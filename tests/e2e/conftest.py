"""The local stack (`make dev`) started on random free ports, driven over HTTP: the runner
is kedro_jobs_local.dev_stack (the load benchmark uses it too); here, its fixtures.

With KEDRO_JOBS_E2E_LOCALSTACK set to an interpreter that has localstack-core (what `make
test-localstack` does), each stack's SQS and S3 are a LocalStack of its own and DynamoDB
stays on the embedded moto.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from kedro_jobs.core.states import TERMINAL
from kedro_jobs_local.dev_stack import LocalStack, running_local_stack
from kedro_jobs_local.procfs import descendants


def until(what: str, check: Callable[[], Any], timeout: float) -> Any:
    """``check()``'s first truthy answer, polled every half second; fails naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.5)


def busy_consumers(stack: LocalStack) -> list[int]:
    """The consumers of `make dev` running a job (or a fanned-out job's group): pollers of
    the jobs queue with a forked child (the run's worker)."""
    procs = stack.processes()
    assert stack.process is not None
    pollers = [
        p.pid
        for p in procs
        if "kedro-jobs-queue" in p.command
        and "kedro_jobs_local.poller" in p.command
        and p.ppid == stack.process.pid
    ]
    return [pid for pid in pollers if any(q.ppid == pid for q in procs)]


def wait_for(client: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    """The job once it has ended, or as it is when ``timeout`` runs out."""
    deadline = time.monotonic() + timeout
    while True:
        record: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()
        if record["status"] in TERMINAL or time.monotonic() > deadline:
            return record
        time.sleep(0.1)


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """After the session, no process of a local stack it started is still running (under
    pytest-xdist: none that this worker started)."""
    yield
    ours = ("kedro_jobs_local", "localstack")
    deadline = time.monotonic() + 10
    while True:
        left = [p for p in descendants(os.getpid()) if any(word in p.command for word in ours)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for proc in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
    assert not left, f"the e2e tests left {len(left)} process(es) running: {left}"


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_local_stack(tmp_path_factory.mktemp("dev") / "dev.log") as stack:
        yield stack
