"""`make dev` as a service: every stop signal leaves nothing running, a dead emulator or
consumer comes back by itself, `/health` says when nobody takes the jobs, and the history
(jobs, logs, pending work) outlives restarts and crashes."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from kedro_jobs_local.dev_stack import LocalStack, running_local_stack, stop_and_count, wait_healthy

from .conftest import wait_for

SLOW = {"pipeline_name": "reporting", "parameters": {"reporting": {"delay_seconds": 30}}}


def until(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.2)


def submit(client: httpx.Client, body: dict[str, Any] | None = None) -> str:
    job_id: str = client.post("/api/v1/jobs", json=body or {"pipeline_name": "hello"}).json()["id"]
    return job_id


def pid_of(stack: LocalStack, marker: str) -> int:
    """The pid of make dev's own child whose command has `marker` (a consumer's names its
    queue; the jobs it forks share its command line but not its parent)."""
    assert stack.process is not None
    [proc] = [p for p in stack.processes() if marker in p.command and p.ppid == stack.process.pid]
    return proc.pid


def listed(client: httpx.Client) -> dict[str, str]:
    jobs = client.get("/api/v1/jobs", params={"limit": 100}).json()["jobs"]
    return {j["id"]: j["status"] for j in jobs}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=str)
def test_each_stop_signal_leaves_nothing_running(tmp_path: Path, sig: signal.Signals) -> None:
    with running_local_stack(tmp_path / "dev.log", workers=1) as stack, stack.client() as client:
        # A job running in its forked process when the signal comes: that one goes too.
        job = submit(client, SLOW)
        until(
            "the job runs", lambda: client.get(f"/api/v1/jobs/{job}").json()["status"] == "running"
        )
        started = stack.processes()
        # moto, the API, a consumer, the dead-letter poller and the job's own process.
        assert len(started) >= 5, started
        assert stack.process is not None
        left = stop_and_count(stack.process, started, sig)
        assert left == [], f"{len(left)} of {len(started)} processes left after {sig.name}"


def test_a_killed_emulator_or_consumer_comes_back(tmp_path: Path) -> None:
    with running_local_stack(tmp_path / "dev.log", workers=1) as stack, stack.client() as client:
        first = submit(client)
        assert wait_for(client, first)["status"] == "completed"

        os.kill(pid_of(stack, "kedro-jobs-queue"), signal.SIGKILL)
        # Back, and polling: a receive the dead one left waiting on the emulator may still
        # take a message for a moment (SQS then hides it for the visibility timeout).
        until(
            "the consumer is back",
            lambda: any(
                c["restarts"] == 1 and c["alive"] and c["state"] == "idle"
                for c in stack.health()["consumers"]
            ),
        )
        second = submit(client)
        assert wait_for(client, second)["status"] == "completed"

        os.kill(pid_of(stack, "kedro_jobs_local.moto_server"), signal.SIGKILL)
        wait_healthy(stack, timeout=30)
        # What the emulator held came back with it, and jobs run again.
        assert listed(client) == {first: "completed", second: "completed"}
        assert "hello" in client.get(f"/api/v1/jobs/{first}/logs").text
        third = submit(client)
        assert wait_for(client, third)["status"] == "completed"
    text = stack.log.read_text()
    # One line for each death; while the emulator was away, a few lines, not a flood.
    assert text.count("; restarting") == 2, text[-3000:]
    assert text.count("poll failed") <= 10, text[-3000:]


def test_health_is_degraded_while_jobs_wait_with_no_consumer(tmp_path: Path) -> None:
    with running_local_stack(tmp_path / "dev.log", workers=1) as stack, stack.client() as client:
        until(
            "the consumer polls",
            lambda: [c["state"] for c in stack.health()["consumers"]] == ["idle", "idle"],
        )
        consumer = pid_of(stack, "kedro-jobs-queue")
        os.kill(consumer, signal.SIGSTOP)  # hung: alive to the supervisor, polling nothing
        try:
            time.sleep(2)  # its last long poll has ended on the server's side
            job = submit(client)
            health = until("health says degraded", lambda: _degraded(stack), timeout=60)
            assert health["consumers_alive"] == 0 and health["queue"]["waiting"] == 1
            assert "no consumer alive" in health["detail"]
        finally:
            os.kill(consumer, signal.SIGCONT)
        assert wait_for(client, job)["status"] == "completed"
        until("health is ok again", lambda: stack.health()["status"] == "ok")


def _degraded(stack: LocalStack) -> dict[str, Any] | None:
    health = stack.health()
    return health if health["status"] == "degraded" else None


def test_history_outlives_restarts_and_crashes_and_fresh_starts_empty(tmp_path: Path) -> None:
    state = tmp_path / "state"
    log = tmp_path / "dev.log"
    with running_local_stack(log, workers=1, state_dir=state) as stack, stack.client() as client:
        done = [submit(client) for _ in range(3)]
        assert all(wait_for(client, j)["status"] == "completed" for j in done)
        os.kill(pid_of(stack, "kedro-jobs-queue"), signal.SIGSTOP)
        time.sleep(2)
        pending = [submit(client) for _ in range(2)]
        before = listed(client)
    # Stopped with SIGTERM by the block's end (the stopped consumer is killed after its grace).
    assert before == {**{j: "completed" for j in done}, **{j: "pending" for j in pending}}

    with running_local_stack(log, workers=1, state_dir=state) as stack, stack.client() as client:
        assert listed(client).keys() == before.keys()
        assert all(wait_for(client, j)["status"] == "completed" for j in pending)
        assert "hello" in client.get(f"/api/v1/jobs/{done[0]}/logs").text
        last = submit(client)
        assert wait_for(client, last)["status"] == "completed"
        # A crash: make dev itself SIGKILLed. Its processes go with it, the state stays.
        assert stack.process is not None
        started = stack.processes()
        assert stop_and_count(stack.process, started, signal.SIGKILL) == []

    with running_local_stack(log, workers=1, state_dir=state) as stack, stack.client() as client:
        assert listed(client) == {**{j: "completed" for j in [*done, *pending]}, last: "completed"}

    with (
        running_local_stack(log, workers=1, state_dir=state, args=("--fresh",)) as stack,
        stack.client() as client,
    ):
        assert listed(client) == {}
    assert (state / "previous" / "moto").is_dir()  # the old history was set aside, not lost
