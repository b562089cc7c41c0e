"""A forked run holds a node boundary's progress report back when a quick node follows soon
after its last report (runner/control.py: REPORT_QUIET_SECONDS, QUICK_NODE_SECONDS): a
sub-second job makes no progress write, yet the sink still learns where the run is, a node
that runs on past a moment is still reported, and a cancel is still seen, never past a node
expected to be long."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kedro_jobs.runner import control
from kedro_jobs.runner.runner import KedroRunner
from kedro_jobs.runner.types import RunOutcome, RunRequest
from kedro_jobs_local.counting_project import executions

QUICK = {"start": 0.001, "double": 0.001, "step1": 0.01, "step2": 0.01, "step3": 0.01}


class Sink:
    """A progress sink that opts in to held reports; ``cancel`` answers every write after
    the first ``writes_before_cancel``."""

    def __init__(self, *, cancel: bool = False, writes_before_cancel: int = 0) -> None:
        self.cancel = cancel
        self.writes_before_cancel = writes_before_cancel
        self.writes: list[tuple[int, int, str | None]] = []
        self.held_reports: list[tuple[int, int, str | None]] = []
        self.read_at: float | None = None  # when a write last read the flag (None: unknown)

    def __call__(self, completed: int, total: int, current: str | None, /) -> bool:
        self.writes.append((completed, total, current))
        return self.cancel and len(self.writes) > self.writes_before_cancel

    def held(self, completed: int, total: int, current: str | None, /) -> None:
        self.held_reports.append((completed, total, current))


def _run(
    runner: KedroRunner, pipeline: str, sink: Sink, estimates: dict[str, float], **params: float
) -> RunOutcome:
    request = RunRequest("job-held", pipeline, dict(params), node_estimates=estimates)
    return runner.run(request, sink, deadline=time.monotonic() + 60)


def test_a_quick_job_writes_no_progress_and_its_sink_still_learns_each_boundary(
    forking: KedroRunner, record: Path
) -> None:
    sink = Sink()
    outcome = _run(forking, "two_nodes", sink, QUICK)
    assert outcome.status == "completed"
    assert sink.held_reports == [(1, 2, "double")]
    assert sink.writes == [(2, 2, None)]  # the end only, which the final write records
    assert outcome.node_durations.keys() == {"start", "double"}


def test_without_past_timings_every_boundary_is_written(forking: KedroRunner, record: Path) -> None:
    sink = Sink()
    assert _run(forking, "two_nodes", sink, {}).status == "completed"
    assert sink.held_reports == []
    assert sink.writes == [(1, 2, "double"), (2, 2, None)]


def test_a_cancel_stops_the_run_before_a_node_not_known_to_be_quick(
    forking: KedroRunner, record: Path
) -> None:
    sink = Sink(cancel=True)
    outcome = _run(forking, "steps", sink, {"step1": 0.01}, x=1, seconds=0.01)
    assert outcome.status == "cancelled"
    assert executions(record) == {"step": 1}  # step2's past time is unknown: written


def test_a_cancel_is_seen_once_the_quiet_time_since_the_last_report_is_over(
    forking: KedroRunner, record: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "REPORT_QUIET_SECONDS", 0.0)  # as if a second had passed
    sink = Sink(cancel=True)
    outcome = _run(forking, "steps", sink, QUICK, x=1, seconds=0.01)
    assert outcome.status == "cancelled"
    assert executions(record) == {"step": 1}
    assert sink.held_reports == []


def test_a_held_report_is_written_when_its_quick_node_runs_on_and_a_cancel_it_reads_stops_the_run(
    forking: KedroRunner, record: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "REPORT_QUIET_SECONDS", 600.0)  # every boundary may be held
    monkeypatch.setattr(control, "QUICK_NODE_SECONDS", 2.0)  # a 1 s node counts as quick
    # The cancel is asked after the start's report (written 0.25 s into step1, as before).
    sink = Sink(cancel=True, writes_before_cancel=1)
    # Each step takes 1 s, though past runs timed them quick: step2's held report is written
    # 0.25 s into it, reads the cancel, and the run stops when step2 ends.
    outcome = _run(forking, "steps", sink, QUICK, x=1, seconds=1.0)
    assert outcome.status == "cancelled"
    assert executions(record) == {"step": 2}
    assert sink.held_reports == [(1, 3, "step2")]
    assert sink.writes[:2] == [(0, 3, "step1"), (1, 3, "step2")]


def test_a_cancel_asked_while_a_node_ran_long_is_seen_at_its_end_even_within_the_quiet_time(
    forking: KedroRunner, record: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "REPORT_QUIET_SECONDS", 600.0)  # every boundary may be held
    # The cancel is asked after the start's report (0.25 s into step1), while step1 runs on.
    sink = Sink(cancel=True, writes_before_cancel=1)
    outcome = _run(forking, "steps", sink, QUICK, x=1, seconds=0.4)  # past runs: quick
    assert outcome.status == "cancelled"
    assert executions(record) == {"step": 1}  # step1 ran 0.4 s: its boundary was written
    assert sink.held_reports == []


def test_a_boundary_is_written_when_the_sinks_last_read_of_the_cancel_flag_is_old(
    forking: KedroRunner, record: Path
) -> None:
    # The claim read the flag long before the run began (a cold container's project load).
    sink = Sink(cancel=True)
    sink.read_at = time.monotonic() - 5
    outcome = _run(forking, "steps", sink, QUICK, x=1, seconds=0.01)
    assert outcome.status == "cancelled"
    assert executions(record) == {"step": 1}
    assert sink.held_reports == []
