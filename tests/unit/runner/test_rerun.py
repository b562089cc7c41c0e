"""Rerun from failure, in the runner: a run that fails, is cancelled or times out keeps a
checkpoint at its last good node boundary (nothing is committed), and a new job that goes on
from it runs only the nodes that did not complete, with the results and committed files of
an uninterrupted run. Real Kedro runs of tests/support/rerun_project.py, whose third node
fails while a marker file exists."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from kedro_jobs.runner.runner import KedroRunner
from kedro_jobs.runner.types import RunOutcome, RunRequest
from kedro_jobs_local.counting_project import executions
from tests.support.continuation_project import segment_request


def _run(runner: KedroRunner, job_id: str, *, progress: Any = None, **more: Any) -> RunOutcome:
    return runner.run(
        RunRequest(job_id, "rerun", more.pop("params", {}), {}, **more),
        progress or (lambda *_: False),
        deadline=time.monotonic() + 30,
    )


def _committed(root: Path) -> tuple[dict[str, bytes], set[str]]:
    """Every file committed under the data root's data/, a version folder named VERSION, and
    the versions seen."""
    files: dict[str, bytes] = {}
    versions: set[str] = set()
    for path in sorted((root / "data").rglob("*")):
        if path.is_file():
            parts = list(path.relative_to(root).parts)
            if len(parts) >= 3 and parts[-3] == parts[-1]:  # <name>/<version>/<name>
                versions.add(parts[-2])
                parts[-2] = "VERSION"
            files["/".join(parts)] = path.read_bytes()
    return files, versions


def _uninterrupted(runner: KedroRunner, tmp_path: Path) -> tuple[RunOutcome, dict[str, bytes]]:
    root = runner.data_root
    runner.data_root = str(tmp_path / "whole")
    try:
        whole = _run(runner, "whole-job")
    finally:
        runner.data_root = root
    assert whole.status == "completed", whole.error_message
    return whole, _committed(tmp_path / "whole")[0]


def test_a_rerun_from_failure_runs_only_the_nodes_that_did_not_complete(
    rerunning: KedroRunner, tmp_path: Path, record: Path
) -> None:
    whole, whole_files = _uninterrupted(rerunning, tmp_path)
    record.unlink()
    root = Path(rerunning.data_root)
    (tmp_path / "marker").touch()

    failed = _run(rerunning, "failed-job")

    assert failed.status == "failed"
    assert failed.error_message == "RuntimeError: the marker file is there (node: fragile)"
    assert failed.kept == f"{root}/.kedro-jobs/checkpoints/failed-job/1"
    assert not (root / "data").exists()  # nothing of a failed job is committed
    assert executions(record) == {"load": 1, "prepare": 1, "fragile": 1}

    (tmp_path / "marker").unlink()
    calls: list[tuple[int, int, str | None]] = []

    def progress(completed: int, total: int, current: str | None) -> bool:
        calls.append((completed, total, current))
        return False

    rerun = _run(
        rerunning, "rerun-job", progress=progress, checkpoint=failed.kept, reuse_from="failed-job"
    )

    assert rerun.status == "completed", rerun.error_message
    # The completed nodes did not run again; the one that failed and the one after it did.
    assert executions(record) == {"load": 1, "prepare": 1, "fragile": 2, "report": 1}
    assert list(rerun.node_durations) == ["fragile", "report"]
    # Progress counts the reused nodes as done (a fork holds its start report back).
    assert calls and all(total == 4 and done >= 2 for done, total, _ in calls)
    assert (rerun.progress.completed, rerun.progress.total) == (4, 4)
    # What an uninterrupted run gives: results (an early one from a reused node too) and files.
    assert rerun.results == whole.results
    assert rerun.results is not None and rerun.results["early"] == {"loaded": 5}
    files, versions = _committed(root)
    assert files == whole_files
    # One save version, the rerun's own (the model was saved by the failed job's node).
    [version] = versions
    assert version.endswith("-rerun-job")
    assert {o["name"] for o in rerun.outputs} == {"table", "model", "scores"}
    # The failed job's kept checkpoint is left for its own expiry; the rerun kept none.
    assert Path(failed.kept, "manifest.json").is_file()
    assert not (root / ".kedro-jobs" / "checkpoints" / "rerun-job").exists()


def test_a_cancelled_run_keeps_its_last_boundary_and_a_rerun_goes_on_from_it(
    rerunning: KedroRunner, tmp_path: Path, record: Path
) -> None:
    root = Path(rerunning.data_root)

    def cancel_after_two(completed: int, total: int, current: str | None) -> bool:
        return completed >= 2

    cancelled = _run(rerunning, "cancelled-job", progress=cancel_after_two)

    assert cancelled.status == "cancelled"
    assert cancelled.kept == f"{root}/.kedro-jobs/checkpoints/cancelled-job/1"
    assert not (root / "data").exists()
    rerun = _run(rerunning, "rerun-c", checkpoint=cancelled.kept, reuse_from="cancelled-job")
    assert rerun.status == "completed", rerun.error_message
    assert executions(record) == {"load": 1, "prepare": 1, "fragile": 1, "report": 1}
    assert rerun.results is not None and rerun.results["summary"] == {"rows": 5, "total": 100.0}


def test_a_run_that_completed_no_node_keeps_nothing(
    rerunning: KedroRunner, tmp_path: Path, record: Path
) -> None:
    failed = _run(rerunning, "failed-first", params={"x": "five"})

    assert failed.status == "failed" and "(node: load)" in (failed.error_message or "")
    assert failed.kept is None
    assert not (Path(rerunning.data_root) / ".kedro-jobs" / "checkpoints" / "failed-first").exists()


def test_a_rerun_whose_kept_data_is_gone_fails_saying_so(
    rerunning: KedroRunner, tmp_path: Path, record: Path
) -> None:
    (tmp_path / "marker").touch()
    failed = _run(rerunning, "failed-gone")
    assert failed.kept is not None
    shutil.rmtree(failed.kept)
    (tmp_path / "marker").unlink()
    record.unlink()

    rerun = _run(rerunning, "rerun-gone", checkpoint=failed.kept, reuse_from="failed-gone")

    assert rerun.status == "failed"
    assert (rerun.error_message or "").startswith(
        "Rerun from failure of job failed-gone: the data it kept is gone or unusable"
    )
    assert not record.exists()  # no node ran


def test_a_checkpoint_of_another_job_is_refused_without_reuse_from(
    rerunning: KedroRunner, tmp_path: Path, record: Path
) -> None:
    """Only the job a rerun names (its ``reuse_from``, set from the record the owner check
    read) may lend it a checkpoint."""
    (tmp_path / "marker").touch()
    failed = _run(rerunning, "failed-own")
    (tmp_path / "marker").unlink()

    other = _run(rerunning, "other-job", checkpoint=failed.kept, reuse_from="someone-else")

    assert other.status == "failed"
    assert "is job failed-own's" in (other.error_message or "")


@pytest.mark.parametrize("continuing", ["fork"], indirect=True)
def test_a_timed_out_run_keeps_the_checkpoint_it_went_on_from(
    continuing: KedroRunner, tmp_path: Path, record: Path
) -> None:
    """A node cut off by the deadline (the child is killed mid-node) leaves no boundary of its
    own: the checkpoint the segment went on from is kept, and a rerun goes on from there."""
    first = continuing.run(segment_request("job-t"), lambda *_: False, deadline=_in(30))
    assert first.status == "continued"
    slow = segment_request(
        "job-t", checkpoint=first.checkpoint, segment=2, may_continue=False, params={"seconds": 30}
    )
    timed_out = continuing.run(slow, lambda *_: False, deadline=_in(2))
    assert timed_out.status == "timed_out"
    assert timed_out.kept == first.checkpoint

    # (Its own parameters: the cut-off node is slow only in the segment that timed out.)
    rerun = continuing.run(
        RunRequest("rerun-t", "steps", {}, {}, checkpoint=timed_out.kept, reuse_from="job-t"),
        lambda *_: False,
        deadline=_in(30),
    )

    assert rerun.status == "completed", rerun.error_message
    assert list(rerun.node_durations) == ["second", "third"]
    assert executions(record) == {"first": 1, "second": 2, "third": 1}


def _in(seconds: float) -> float:
    return time.monotonic() + seconds


def test_a_rerun_that_fails_again_keeps_the_data_it_reused(
    rerunning: KedroRunner, tmp_path: Path, record: Path
) -> None:
    """The node fails again (not fixed yet): the rerun keeps the stopped job's checkpoint it
    went on from, so the next rerun (which reuses the first job's nodes) still skips them."""
    (tmp_path / "marker").touch()
    first = _run(rerunning, "first-job")
    again = _run(rerunning, "rerun-1", checkpoint=first.kept, reuse_from="first-job")

    assert again.status == "failed" and again.kept == first.kept
    assert Path(str(first.kept), "manifest.json").is_file()
    (tmp_path / "marker").unlink()
    fixed = _run(rerunning, "rerun-2", checkpoint=again.kept, reuse_from="first-job")

    assert fixed.status == "completed", fixed.error_message
    assert executions(record) == {"load": 1, "prepare": 1, "fragile": 3, "report": 1}
