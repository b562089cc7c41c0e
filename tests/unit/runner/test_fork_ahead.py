"""The next job's child forked ahead, between jobs (runner/forked.py): a job then runs in it
instead of waiting for a fork, and is the same job in every way a user sees; a child that
could hold anything different from a fresh fork (another environment, a dead one) is let
go and the job forks as before."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from kedro_jobs.runner import forked
from kedro_jobs.runner.process import FORKED_AHEAD_NAME
from kedro_jobs.runner.runner import KedroRunner
from kedro_jobs_local.counting_project import RECORD_VAR, executions

from .conftest import no_zombies_soon, run


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The forks made on a job's path from now on (the pid each gave the parent)."""
    made: list[int] = []
    fork = forked._fork

    def counted() -> int:
        pid = fork()
        if pid:
            made.append(pid)
        return pid

    monkeypatch.setattr(forked, "_fork", counted)
    return made


def waiting_children() -> list[int]:
    """This process's children forked ahead, waiting for a job."""
    found = []
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                name = Path(f"/proc/{pid}/comm").read_bytes().strip()
            except OSError:
                continue
            if name == FORKED_AHEAD_NAME:
                found.append(int(pid))
    return found


def one_waiting_soon(seconds: float = 5.0) -> int:
    """The child forked ahead (it names itself as it starts)."""
    deadline = time.monotonic() + seconds
    while len(waiting := waiting_children()) != 1:
        assert time.monotonic() < deadline, f"children waiting: {waiting}"
        time.sleep(0.01)
    return waiting[0]


def child_forked_ahead(
    runner: KedroRunner,
    pipeline: str = "two_nodes",
    params: dict[str, object] | None = None,
    seconds: float = 30,
) -> int:
    """A child forked ahead for this shape of job, waiting (its pid). Two runs first: the
    first prepares the shape, the second finds it prepared; the runner then forks ahead."""
    for _ in range(2):
        run(runner, pipeline, {"x": 3} if params is None else params, seconds=seconds)
    runner.fork_ahead()
    return one_waiting_soon()


def none_waiting_soon(seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while waiting_children():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_job_runs_in_the_child_forked_ahead_without_a_fork_of_its_own(
    forking: KedroRunner, record: Path, forks: list[int]
) -> None:
    child_forked_ahead(forking)
    forks.clear()
    outcome = run(forking, "two_nodes", {"x": 3})
    assert outcome.status == "completed"
    assert outcome.results == {"doubled": 6}
    assert "Running node: double" in outcome.log
    assert forks == []
    assert executions(record) == {"start": 3, "double": 3}
    assert none_waiting_soon()
    assert no_zombies_soon()


def test_a_child_forked_ahead_of_a_change_of_environment_is_let_go(
    forking: KedroRunner, record: Path, forks: list[int], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    child_forked_ahead(forking)
    later = tmp_path / "later.txt"
    monkeypatch.setenv(RECORD_VAR, str(later))
    forks.clear()
    outcome = run(forking, "two_nodes", {"x": 3})
    assert outcome.results == {"doubled": 6}
    assert len(forks) == 1
    assert executions(later) == {"start": 1, "double": 1}  # the job saw the environment
    assert none_waiting_soon()
    assert no_zombies_soon()


def test_lambdas_trace_header_of_each_invocation_keeps_the_child_and_reaches_the_job(
    forking: KedroRunner, record: Path, forks: list[int], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # The record's path, sent as Lambda's trace header is: the job shows what it saw.
    monkeypatch.setattr(forked, "INVOCATION_ENV", (*forked.INVOCATION_ENV, RECORD_VAR))
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-00000001-a")
    child_forked_ahead(forking)
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-00000002-b")  # the next invocation
    later = tmp_path / "later.txt"
    monkeypatch.setenv(RECORD_VAR, str(later))
    forks.clear()
    outcome = run(forking, "two_nodes", {"x": 3})
    assert outcome.results == {"doubled": 6}
    assert forks == []
    assert executions(later) == {"start": 1, "double": 1}
    assert no_zombies_soon()


def test_a_child_forked_ahead_that_died_is_replaced_by_a_fork(
    forking: KedroRunner, record: Path, forks: list[int]
) -> None:
    os.kill(child_forked_ahead(forking), signal.SIGKILL)
    time.sleep(0.1)
    forks.clear()
    outcome = run(forking, "two_nodes", {"x": 3})
    assert outcome.status == "completed"
    assert outcome.results == {"doubled": 6}
    assert len(forks) == 1
    assert no_zombies_soon()


def test_the_deadline_kills_a_job_run_in_a_child_forked_ahead(
    forking: KedroRunner, record: Path, forks: list[int]
) -> None:
    child_forked_ahead(forking, "slow", {"seconds": 20}, seconds=0.3)
    forks.clear()
    started = time.monotonic()
    outcome = run(forking, "slow", {"seconds": 20}, seconds=0.8)
    assert time.monotonic() - started < 5
    assert forks == []
    assert outcome.status == "timed_out"
    assert outcome.error_message is not None and "time budget of 0.8 s" in outcome.error_message
    time.sleep(0.3)
    assert executions(record)["finish"] == 0
    assert no_zombies_soon()


def test_a_cancel_stops_a_job_run_in_a_child_forked_ahead(
    forking: KedroRunner, record: Path, forks: list[int]
) -> None:
    child_forked_ahead(forking)
    forks.clear()
    outcome = run(forking, "two_nodes", {"x": 3}, progress=lambda done, *_: done >= 1)
    assert forks == []
    assert outcome.status == "cancelled"
    assert executions(record) == {"start": 3, "double": 2}


def test_no_child_is_forked_ahead_after_a_job_of_a_new_shape_or_inline(
    forking: KedroRunner, record: Path
) -> None:
    # Jobs of ever-new parameters would let each child forked ahead go, and fork again.
    run(forking, "two_nodes", {"x": 1234567})
    forking.fork_ahead()
    time.sleep(0.2)
    assert waiting_children() == []
    run(forking, "two_nodes", {"x": 1234567})
    forking.isolation = "inline"
    forking.fork_ahead()
    time.sleep(0.2)
    assert waiting_children() == []
