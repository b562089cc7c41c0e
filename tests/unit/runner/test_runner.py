"""The Kedro runner on a small real project in tmp_path: results, run options, errors,
cancel, deadline and crashes, in both isolation modes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from kedro_jobs.runner import forked
from kedro_jobs.runner.runner import KedroRunner
from kedro_jobs_local.counting_project import executions

from .conftest import no_zombies_soon, run


def test_a_completed_run_returns_json_safe_free_outputs(
    isolated: KedroRunner, record: Path
) -> None:
    outcome = run(isolated, "frame", {"x": 10})
    assert outcome.status == "completed", outcome.error_message
    assert outcome.error_message is None and outcome.progress.current is None
    results = outcome.results
    assert results is not None
    json.dumps(results, allow_nan=False)
    assert results["summary"] == {"rows": 10, "mean_square": 28.5, "undefined": None}
    top = results["top"]
    assert top["type"] == "DataFrame" and top["shape"] == [6, 2]
    assert top["columns"] == ["n", "square"] and top["dtypes"] == {"n": "int64", "square": "int64"}
    assert top["head"][0] == {"n": 9, "square": 81} and len(top["head"]) == 5
    assert executions(record) == {"make_table": 1, "summarise": 1, "top": 1}
    assert outcome.duration > 0


def test_parameters_change_the_result(isolated: KedroRunner) -> None:
    assert run(isolated, "two_nodes", {"x": 2}).results == {"doubled": 4}
    assert run(isolated, "two_nodes", {"x": 5}).results == {"doubled": 10}
    assert run(isolated, "two_nodes").results == {"doubled": 6}  # conf/base: x = 3
    # A parameter the project does not define is a runtime parameter like any other.
    assert run(isolated, "two_nodes", {"x": 1, "unused": {"a": 1}}).results == {"doubled": 2}


@pytest.mark.parametrize(
    ("options", "ran", "results"),
    [
        ({"tags": ["prep", "core"]}, {"start": 1, "double": 1}, {"started": 3, "doubled": 6}),
        ({"node_names": ["double"]}, {"double": 1}, {"doubled": 6}),
        ({"from_nodes": ["double"]}, {"double": 1, "finish": 1}, {"finished": {"value": 6}}),
        ({"to_nodes": ["double"]}, {"double": 1}, {"doubled": 6}),
        ({"to_outputs": ["started"]}, {"start": 1}, {"started": 3}),
    ],
)
def test_run_options_filter_the_nodes(
    isolated: KedroRunner,
    record: Path,
    options: dict[str, list[str]],
    ran: dict[str, int],
    results: dict[str, object],
) -> None:
    outcome = run(isolated, "tagged", options=options)
    assert outcome.status == "completed", outcome.error_message
    assert executions(record) == ran
    assert outcome.results == results


def _recording() -> tuple[list[tuple[int, int, str | None]], Any]:
    calls: list[tuple[int, int, str | None]] = []

    def progress(completed: int, total: int, current: str | None) -> bool:
        calls.append((completed, total, current))
        return False

    return calls, progress


def test_progress_is_reported_at_the_start_and_after_each_node(
    isolated: KedroRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forked, "START_REPORT_DELAY_SECONDS", 0.05)
    calls, progress = _recording()
    outcome = run(isolated, "slow_start", {"seconds": 0.5}, progress=progress)
    assert outcome.status == "completed", outcome.error_message
    # Each call names the node about to run (Kedro's order), the last none.
    assert calls == [(0, 2, "nap"), (1, 2, "finish"), (2, 2, None)]


def test_a_quick_first_nodes_report_stands_for_the_start_in_a_fork(
    runner: KedroRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The forked run's start is reported only once its first node has run a while: a
    # quicker first node's own report says more, and saves the job a write.
    monkeypatch.setattr(forked, "START_REPORT_DELAY_SECONDS", 5.0)
    monkeypatch.setattr(runner, "isolation", "fork")
    calls, progress = _recording()
    assert run(runner, "tagged", progress=progress, tags=["prep", "core"]).status == "completed"
    assert [(done, total) for done, total, _ in calls] == [(1, 2), (2, 2)]
    assert calls[1][2] is None


def test_the_projects_pipeline_registry_is_read_once_not_per_job(
    isolated: KedroRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(isolated, "two_nodes")  # (re)loads it if another project was configured meanwhile
    calls = tmp_path / "registry_calls.txt"
    monkeypatch.setenv("KEDRO_JOBS_TEST_REGISTRY_CALLS", str(calls))
    for pipeline in ("two_nodes", "frame", "two_nodes", "tagged"):
        assert run(isolated, pipeline).status == "completed"
    # register_pipelines is the user's code: in a big project it takes seconds.
    assert not calls.exists()


def test_a_pipeline_error_fails_the_job_naming_the_node(
    isolated: KedroRunner, record: Path
) -> None:
    outcome = run(isolated, "failing", {"x": 7})
    assert outcome.status == "failed"
    assert outcome.error_message == "ValueError: boom at 7 (node: boom)"
    assert outcome.progress.current == "boom"
    assert outcome.results is None
    assert "Traceback" in outcome.log and "boom at 7" in outcome.log
    assert executions(record) == {"start": 1, "boom": 1}


def test_an_error_before_any_node_runs_names_no_node(isolated: KedroRunner, record: Path) -> None:
    outcome = run(isolated, "needs_input")
    assert outcome.status == "failed"
    assert "no_such_table" in (outcome.error_message or "")
    assert "(node:" not in (outcome.error_message or "")
    assert outcome.progress.current is None
    assert executions(record) == {}


def test_an_unknown_pipeline_fails_with_the_known_names(isolated: KedroRunner) -> None:
    outcome = run(isolated, "nope")
    assert outcome.status == "failed"
    assert outcome.error_message is not None
    assert "'nope'" in outcome.error_message and "two_nodes" in outcome.error_message


def test_a_cancel_stops_the_run_before_the_next_node(isolated: KedroRunner, record: Path) -> None:
    calls: list[int] = []

    def cancel_after_first_node(completed: int, total: int, current: str | None) -> bool:
        calls.append(completed)
        return completed >= 1

    outcome = run(isolated, "slow", {"seconds": 0}, progress=cancel_after_first_node)
    assert outcome.status == "cancelled"
    assert outcome.results is None
    assert executions(record) == {"start": 1}
    assert calls[-1] == 1  # (a fork reports the start only for a slow first node)


def test_a_cancel_after_the_last_node_changes_nothing(isolated: KedroRunner) -> None:
    outcome = run(isolated, "two_nodes", progress=lambda done, total, _: done == total)
    assert outcome.status == "completed" and outcome.results == {"doubled": 6}


def test_the_log_holds_the_runs_records_with_timestamps(isolated: KedroRunner) -> None:
    outcome = run(isolated, "two_nodes", {"x": 4})
    lines = outcome.log.splitlines()
    assert any("Running node: double" in line for line in lines)
    assert any("job-1" in line and "two_nodes" in line for line in lines)
    assert all(line[:4].isdigit() and line[10] == "T" for line in lines if line[:1].isdigit())


def test_fork_deadline_kills_the_child_and_reaps_it(runner: KedroRunner, record: Path) -> None:
    runner.isolation = "fork"
    try:
        started = time.monotonic()
        outcome = run(runner, "slow", {"seconds": 20}, seconds=0.8)
    finally:
        runner.isolation = "inline"
    assert time.monotonic() - started < 5
    assert outcome.status == "timed_out"
    assert outcome.error_message is not None
    assert "time budget of 0.8 s" in outcome.error_message
    assert outcome.error_message in outcome.log
    time.sleep(0.3)  # the killed child would have finished its nap by now... it must not
    assert executions(record)["finish"] == 0
    assert no_zombies_soon()


def test_fork_deadline_also_kills_what_the_job_started(
    runner: KedroRunner, runner_project: Path, record: Path
) -> None:
    pid_file = runner_project.parent / "spawned.pid"
    runner.isolation = "fork"
    try:
        outcome = run(runner, "spawner", seconds=1.0)
    finally:
        runner.isolation = "inline"
    assert outcome.status == "timed_out"
    spawned = int(pid_file.read_text())
    time.sleep(0.1)
    stat = Path(f"/proc/{spawned}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] in {"Z", "X"}


def test_inline_deadline_is_checked_between_nodes(runner: KedroRunner, record: Path) -> None:
    outcome = run(runner, "slow", {"seconds": 0.3}, seconds=0.1)
    assert outcome.status == "timed_out"
    assert outcome.error_message is not None and "time budget" in outcome.error_message
    assert executions(record) == {"start": 1, "nap": 1}


def test_a_worker_that_dies_fails_the_job_with_a_clear_message(
    runner: KedroRunner, record: Path
) -> None:
    runner.isolation = "fork"
    try:
        outcome = run(runner, "crash")
        after = run(runner, "two_nodes", {"x": 1})
    finally:
        runner.isolation = "inline"
    assert outcome.status == "failed"
    assert outcome.error_message == (
        "The job's worker process died before the pipeline finished: it exited with code 3"
    )
    assert after.results == {"doubled": 2}  # the consumer is unharmed
    assert no_zombies_soon()


def test_a_forked_run_leaves_the_parent_untouched(runner: KedroRunner, record: Path) -> None:
    runner.isolation = "fork"
    try:
        outcome = run(runner, "two_nodes", {"x": 8})
    finally:
        runner.isolation = "inline"
    assert outcome.results == {"doubled": 16}
    assert executions(record) == {"start": 1, "double": 1}
    assert no_zombies_soon()
    assert os.environ.get("KEDRO_DISABLE_TELEMETRY") == "1"


def test_the_manifest_lists_nodes_inputs_outputs_and_parameters(runner: KedroRunner) -> None:
    manifest = runner.manifest()
    assert manifest["project"] == "runner_project"
    assert manifest["kedro_version"].startswith("1.")
    assert manifest["generated_at"].startswith("20")
    slow = manifest["pipelines"]["slow"]
    assert slow["nodes"][0] == {
        "name": "start",
        "inputs": ["params:x"],
        "outputs": ["started"],
        "tags": [],
        "namespace": None,
    }
    assert [n["name"] for n in slow["nodes"]] == ["start", "nap", "finish"]
    assert slow["parameters"] == ["seconds", "x"]
    assert slow["inputs"] == []
    assert slow["outputs"] == ["finished"]
    tags = {n["name"]: n["tags"] for n in manifest["pipelines"]["tagged"]["nodes"]}
    assert tags == {"start": ["prep"], "double": ["core"], "finish": ["report"]}
    assert set(manifest["pipelines"]) >= {"__default__", "two_nodes", "frame", "tagged"}
    json.dumps(manifest)
