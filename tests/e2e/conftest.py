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
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

from kedro_jobs.core.states import TERMINAL
from kedro_jobs.runner.process import FORKED_AHEAD_NAME
from kedro_jobs_local.dev_stack import LocalStack, running_local_stack
from kedro_jobs_local.procfs import descendants

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


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
    the jobs queue with a forked child (the run's worker), not only the one forked ahead for
    the next job."""
    procs = stack.processes()
    assert stack.process is not None
    pollers = [
        p.pid
        for p in procs
        if "kedro-jobs-queue" in p.command
        and "kedro_jobs_local.poller" in p.command
        and p.ppid == stack.process.pid
    ]
    return [pid for pid in pollers if any(q.ppid == pid and _working(q.pid) for q in procs)]


def _working(pid: int) -> bool:
    """Not the child forked ahead, waiting for a job (it names itself so)."""
    try:
        return Path(f"/proc/{pid}/comm").read_bytes().strip() != FORKED_AHEAD_NAME
    except OSError:
        return False


def poll_intervals(first: float = 0.1, longest: float = 0.5) -> Iterator[float]:
    """Sleeps between polls: short at first (most waits are short), then longer. A poll of
    the stack costs its API and emulator ~12 ms of CPU, and the suite is CPU-bound: polling
    a 30 s job every 0.1 s costs a core 4 s."""
    interval = first
    while True:
        yield interval
        interval = min(longest, interval * 1.5)


def wait_for(client: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    """The job once it has ended, or as it is when ``timeout`` runs out."""
    deadline, intervals = time.monotonic() + timeout, poll_intervals()
    while True:
        record: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()
        if record["status"] in TERMINAL or time.monotonic() > deadline:
            return record
        time.sleep(next(intervals))


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """After the session, no process of a local stack it started is still running (under
    pytest-xdist: none that this worker started)."""
    yield
    ours = ("kedro_jobs_local", "localstack")
    # The integration tests' moto server (tests/conftest.py), when this worker ran some too:
    # its own session fixture stops it, maybe after this one.
    integration_moto = "kedro_jobs_local.moto_server -H 127.0.0.1 -p "
    mine = f" --parent {os.getpid()}"

    def of_a_stack(command: str) -> bool:
        if integration_moto in command and command.rstrip().endswith(mine):
            return False
        return any(word in command for word in ours)

    deadline = time.monotonic() + 10
    while True:
        left = [p for p in descendants(os.getpid()) if of_a_stack(p.command)]
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


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Debian's headless Chromium, driven through its own chromedriver (the web page's tests)."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail(f"{CHROMIUM} and {CHROMEDRIVER} are needed: run `make browser`")
    # Selenium must use Debian's driver and browser as given, never fetch its own.
    os.environ["SE_OFFLINE"] = "true"
    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--window-size=1200,800", "--lang=en-GB",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(CHROMEDRIVER, log_output=str(profile.parent / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()  # ends chromedriver and every Chromium process it started
