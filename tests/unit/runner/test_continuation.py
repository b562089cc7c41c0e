"""A job longer than one invocation: it stops at a node boundary with a checkpoint (status
"continued"), and the next segment goes on from it, until the job ends as one run would have.
Real Kedro runs of a three-node project (tests/support/continuation_project.py), each node
sleeping 0.3 s and expected (node_estimates) to take a minute, with a deadline 30 s away: every
segment runs exactly one node."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from kedro_jobs.runner import control
from kedro_jobs.runner.control import ContinuePolicy, RunControl
from kedro_jobs.runner.runner import KedroRunner
from kedro_jobs.runner.types import RunOutcome, RunRequest
from kedro_jobs_local.counting_project import executions
from tests.support.continuation_project import NODES, run_segments, segment_request


def _committed(root: Path) -> tuple[dict[str, bytes], set[str]]:
    """Every file committed under the data root's data/ (a version folder named VERSION) and
    the versions seen."""
    files: dict[str, bytes] = {}
    versions: set[str] = set()
    for path in sorted((root / "data").rglob("*")):
        if not path.is_file():
            continue
        parts = list(path.relative_to(root).parts)
        if len(parts) >= 3 and parts[-3] == parts[-1]:  # <name>/<version>/<name>
            versions.add(parts[-2])
            parts[-2] = "VERSION"
        files["/".join(parts)] = path.read_bytes()
    return files, versions


def _whole(runner: KedroRunner, root: Path, pipeline: str = "steps") -> RunOutcome:
    runner.data_root = str(root)
    return runner.run(
        RunRequest("whole-job", pipeline, {}, {}),
        lambda *_: False,
        deadline=time.monotonic() + 30,
    )


def _staging_empty(runner: KedroRunner) -> bool:
    return not runner.staging_root.exists() or not any(runner.staging_root.iterdir())


def test_a_job_run_one_node_a_segment_ends_as_one_uninterrupted_run(
    continuing: KedroRunner, tmp_path: Path, record: Path
) -> None:
    root = Path(continuing.data_root)
    whole = _whole(continuing, tmp_path / "whole")
    assert whole.status == "completed"
    continuing.data_root = str(root)
    record.unlink()

    outcomes, calls = run_segments(continuing, "job-c")

    assert [o.status for o in outcomes] == ["continued", "continued", "completed"]
    # Each node ran once, in its own segment, which reports how long it took.
    assert executions(record) == dict.fromkeys(NODES, 1)
    assert [list(o.node_durations) for o in outcomes] == [["first"], ["second"], ["third"]]
    assert all(seconds > 0 for o in outcomes for seconds in o.node_durations.values())
    # Checkpoint time: saved in the first, loaded and saved in the second, loaded in the last.
    assert all(o.checkpoint_seconds is not None and o.checkpoint_seconds >= 0 for o in outcomes)
    assert whole.checkpoint_seconds is None
    # Progress counts across segments, of the job's whole pipeline.
    assert [(o.progress.completed, o.progress.total) for o in outcomes] == [(1, 3), (2, 3), (3, 3)]
    assert [o.progress.current for o in outcomes] == ["second", "third", None]
    assert {total for _, total, _ in calls} == {3}
    assert [done for done, _, _ in calls] == sorted(done for done, _, _ in calls)
    assert {(1, 3, "second"), (2, 3, "third"), (3, 3, None)} <= set(calls)
    # The results include the free output of the first segment; the files are committed
    # only at the end, the same as the uninterrupted run's, with one version throughout.
    assert outcomes[-1].results == whole.results
    assert whole.results is not None and {"early", "summary"} <= set(whole.results)
    assert outcomes[0].results is None and outcomes[0].outputs == []
    whole_files, _ = _committed(tmp_path / "whole")
    files, versions = _committed(root)
    assert files == whole_files and len(files) == 3
    assert len(versions) == 1
    assert sorted(o["name"] for o in outcomes[-1].outputs) == sorted(
        o["name"] for o in whole.outputs
    )
    # Nothing is left: no checkpoint, no staging.
    assert not (root / ".kedro-jobs" / "checkpoints" / "job-c").exists()
    assert _staging_empty(continuing)


def test_a_segment_keeps_the_checkpoint_it_went_on_from_until_the_next_reads_its_own(
    continuing: KedroRunner, record: Path
) -> None:
    root = Path(continuing.data_root)
    checkpoints = root / ".kedro-jobs" / "checkpoints" / "job-k"

    first = continuing.run(segment_request("job-k"), lambda *_: False, deadline=_in(30))

    assert first.status == "continued"
    assert first.checkpoint == str(checkpoints / "1")
    # The log says the job goes on, not Kedro's `kedro run --from-nodes` hint.
    assert "continuing in a new invocation" in first.log
    assert "--from-nodes" not in first.log
    manifest = json.loads((checkpoints / "1" / "manifest.json").read_text())["manifest"]
    assert manifest["completed"] == ["first"] and manifest["remaining"] == ["second", "third"]
    assert manifest["total"] == 3 and list(manifest["node_durations"]) == ["first"]
    assert set(manifest["memory"]) == {"values"}  # what the remaining nodes read
    assert manifest["results"] == {"early": {"started_with": 6}}
    assert [item["name"] for item in manifest["staged"]] == ["early_copy"]
    assert not (root / "data").exists()  # nothing committed yet
    assert _staging_empty(continuing)

    second = continuing.run(
        segment_request("job-k", checkpoint=first.checkpoint, segment=2),
        lambda *_: False,
        deadline=_in(30),
    )

    assert second.status == "continued" and second.checkpoint == str(checkpoints / "2")
    # "1" stays: until the consumer records "2", the job's record names "1", and a consumer
    # that dies in between leaves the job to be taken over from it.
    assert sorted(p.name for p in checkpoints.iterdir()) == ["1", "2"]
    manifest = json.loads((checkpoints / "2" / "manifest.json").read_text())["manifest"]
    assert manifest["completed"] == ["first", "second"] and manifest["remaining"] == ["third"]
    assert sorted(item["name"] for item in manifest["staged"]) == ["early_copy", "model", "table"]
    assert not (root / "data").exists()

    # A takeover from "1" (the consumer died before recording "2") goes on as well, and "2",
    # never recorded, is replaced by its own.
    again = continuing.run(
        segment_request("job-k", checkpoint=first.checkpoint, segment=2),
        lambda *_: False,
        deadline=_in(30),
    )
    assert again.status == "continued" and again.checkpoint == str(checkpoints / "2")
    third = continuing.run(
        segment_request("job-k", checkpoint=again.checkpoint, segment=3),
        lambda *_: False,
        deadline=_in(30),
    )
    assert third.status == "completed"
    assert not checkpoints.exists()


def test_with_enough_time_a_job_that_may_continue_runs_in_one_segment(
    continuing: KedroRunner, record: Path
) -> None:
    request = RunRequest("job-one", "steps", {}, {}, may_continue=True)

    outcome = continuing.run(request, lambda *_: False, deadline=_in(120))

    assert outcome.status == "completed" and outcome.checkpoint is None
    assert list(outcome.node_durations) == list(NODES)
    assert not (Path(continuing.data_root) / ".kedro-jobs").exists()


def test_a_run_that_starts_as_its_host_stops_is_handed_back_before_its_first_node(
    continuing: KedroRunner, record: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """make dev stopping (hand_back_running, from its signal handler) while a consumer has
    claimed a job but not yet started its run: the run is handed back as the running ones are,
    at its first boundary (inline: before its first node; forked, whose first node starts
    without a handshake: after it), and the job goes on from there at the next start."""
    monkeypatch.setattr(control, "_STOPPING", None)  # this process's stop ends with the test
    control.hand_back_running()  # before this job's run starts
    stopped = continuing.run(
        segment_request("job-stop"), lambda *_: False, deadline=time.monotonic() + 30
    )
    assert stopped.status == "continued"
    ran = executions(record) if record.exists() else {}
    assert ran == ({"first": 1} if continuing.isolation == "fork" else {})
    monkeypatch.setattr(control, "_STOPPING", None)  # the next start, from where it stopped
    outcome, segment = stopped, 1
    while outcome.status == "continued" and segment < 5:
        segment += 1
        request = segment_request("job-stop", checkpoint=outcome.checkpoint, segment=segment)
        outcome = continuing.run(request, lambda *_: False, deadline=time.monotonic() + 30)
    assert outcome.status == "completed"
    assert executions(record) == dict.fromkeys(NODES, 1)


def test_a_failure_in_the_second_segment_commits_nothing_and_keeps_one_checkpoint(
    continuing: KedroRunner, record: Path
) -> None:
    root = Path(continuing.data_root)
    first = continuing.run(segment_request("job-f", "failing"), lambda *_: False, deadline=_in(30))
    assert first.status == "continued"

    # The last segment may not continue: it runs both nodes left, and the second fails.
    request = segment_request(
        "job-f", "failing", checkpoint=first.checkpoint, segment=2, may_continue=False
    )
    failed = continuing.run(request, lambda *_: False, deadline=_in(30))

    assert failed.status == "failed"
    assert failed.error_message == "ValueError: the third node fails (node: boom)"
    assert failed.results is None and failed.outputs == [] and failed.checkpoint is None
    assert (failed.progress.completed, failed.progress.total) == (2, 3)
    assert executions(record) == {"first": 1, "second": 1, "boom": 1}
    assert not (root / "data").exists()
    # One checkpoint is kept, at the boundary before the node that failed (a rerun from
    # failure goes on from it); the first segment's is gone.
    checkpoints = root / ".kedro-jobs" / "checkpoints" / "job-f"
    assert failed.kept == str(checkpoints / "2")
    assert sorted(p.name for p in checkpoints.iterdir()) == ["2"]
    assert _staging_empty(continuing)


def test_a_checkpoint_that_cannot_be_read_fails_the_job(
    continuing: KedroRunner, tmp_path: Path, record: Path
) -> None:
    request = segment_request("job-x", checkpoint=str(tmp_path / "nowhere"), segment=2)

    outcome = continuing.run(request, lambda *_: False, deadline=_in(30))

    assert outcome.status == "failed"
    assert outcome.error_message is not None
    assert outcome.error_message.startswith(f"The checkpoint {tmp_path / 'nowhere'} is unreadable")
    assert not record.exists()


# -- the decision ------------------------------------------------------------------------------


def _control(seconds_left: float, **policy: Any) -> RunControl:
    control = RunControl(lambda *_: False, _in(seconds_left), policy=ContinuePolicy(**policy))
    control.note(1, 3, "next")
    return control


def test_a_segment_always_runs_a_node_before_it_may_continue() -> None:
    control = _control(0.5, allowed=True, estimates={"next": 60.0})
    assert control.stop_reason() is None
    control.node_done("first", 0.1)
    stop = control.stop_reason()
    assert stop is not None and stop.status == "continued"


def test_the_next_node_is_expected_to_need_the_longer_of_its_estimate_and_the_longest_seen() -> (
    None
):
    control = _control(50, allowed=True, margin=45.0, checkpoint_allowance=2.0)
    control.node_done("first", 1.0)
    assert control.expected("next") == 1.0 and not control.should_continue()
    control = _control(50, allowed=True, margin=45.0, seen={"earlier": 49.0})
    control.node_done("first", 1.0)
    assert control.expected("next") == 49.0 and control.should_continue()  # 49 + 2 > 50
    control = _control(50, allowed=True, estimates={"next": 10.0}, seen={"earlier": 4.0})
    control.node_done("first", 1.0)
    assert control.expected("next") == 10.0 and not control.should_continue()
    # The pipeline last ran with parameters that made its nodes quick (0 s), but this job's
    # nodes take 20 s: the next one is not started with 29 s left (it would be cut off).
    control = _control(50, allowed=True, estimates={"next": 0.0})
    control.node_done("first", 20.0)
    assert control.expected("next") == 20.0
    control = _control(50, allowed=True, margin=45.0)
    assert control.expected("next") == 45.0


def test_without_may_continue_a_run_never_continues() -> None:
    control = _control(0.5, allowed=False, estimates={"next": 60.0})
    control.node_done("first", 0.1)
    assert control.stop_reason() is None


def test_a_checkpoint_begun_before_the_deadline_is_not_killed_at_it() -> None:
    control = _control(-0.1, allowed=True)
    assert control.kill_remaining() < 0
    control.checkpoint_started = control.deadline - 1
    assert 0 < control.kill_remaining() < 10  # within the consumer's safety margin
    control.checkpoint_started = control.deadline + 1  # began too late: no grace
    assert control.kill_remaining() < 0


def _in(seconds: float) -> float:
    return time.monotonic() + seconds
