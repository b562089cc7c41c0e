"""The Kedro runner on a small real project in tmp_path: run options, results, isolation."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kedro_jobs.consumer.runner import KedroRunner, RunRequest
from tests.support.kedro_project import executions, use_record, write_project


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> KedroRunner:
    project = write_project(tmp_path_factory.mktemp("runner") / "p", package="runner_project")
    return KedroRunner(project, isolation="inline")


def _run(runner: KedroRunner, pipeline: str, params: dict[str, object] | None = None,
         **options: object) -> object:  # fmt: skip
    return runner.run(
        RunRequest("job", pipeline, params or {}, dict(options)),
        lambda *_: False,
        deadline=time.monotonic() + 30,
    )


@pytest.mark.parametrize("isolation", ["inline", "fork"])
def test_parameters_change_the_result(runner: KedroRunner, isolation: str) -> None:
    runner.isolation = isolation  # type: ignore[assignment]
    try:
        assert _run(runner, "two_nodes", {"x": 2}).results == {"doubled": 4}  # type: ignore[attr-defined]
        assert _run(runner, "two_nodes", {"x": 5}).results == {"doubled": 10}  # type: ignore[attr-defined]
    finally:
        runner.isolation = "inline"


def test_run_options_filter_the_nodes(runner: KedroRunner, tmp_path: Path) -> None:
    record = tmp_path / "ran.txt"
    use_record(record)
    outcome = _run(runner, "slow", {"seconds": 0}, node_names=["start"])
    assert outcome.status == "completed"  # type: ignore[attr-defined]
    assert executions(record) == {"start": 1}
    outcome = _run(runner, "slow", {"seconds": 0}, to_nodes=["nap"])
    assert executions(record) == {"start": 2, "nap": 1}


def test_an_unknown_pipeline_fails_with_the_known_names(runner: KedroRunner) -> None:
    outcome = _run(runner, "nope")
    assert outcome.status == "failed"  # type: ignore[attr-defined]
    assert "two_nodes" in outcome.error_message  # type: ignore[attr-defined]


def test_inline_deadline_is_checked_between_nodes(runner: KedroRunner, tmp_path: Path) -> None:
    record = tmp_path / "ran.txt"
    use_record(record)
    outcome = runner.run(
        RunRequest("job", "slow", {"seconds": 0.3}, {}),
        lambda *_: False,
        deadline=time.monotonic() + 0.1,
    )
    assert outcome.status == "timed_out"
    assert executions(record)["finish"] == 0


def test_the_manifest_lists_nodes_and_parameters(runner: KedroRunner) -> None:
    manifest = runner.manifest()
    slow = manifest["pipelines"]["slow"]
    assert [n["name"] for n in slow["nodes"]] == ["start", "nap", "finish"]
    assert slow["parameters"] == ["seconds", "x"]
    assert slow["outputs"] == ["finished"]
