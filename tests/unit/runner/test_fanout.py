"""A fanned-out job, group by group, against the same job on one worker: the plan, the
handover between groups on the data root, and one commit at the end."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kedro_jobs.core.fanout import fit_plan
from kedro_jobs.runner.runner import KedroRunner
from kedro_jobs.runner.signed import Signer
from kedro_jobs.runner.types import RunOutcome, RunRequest
from tests.support.fanout_project import write_fanout_project

RECORD_VAR = "KEDRO_JOBS_TEST_RECORD"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fanout_project(tmp_path_factory.mktemp("fanout") / "p")


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def runner(project: Path, data_root: Path) -> KedroRunner:
    return KedroRunner(project, isolation="inline", data_root=str(data_root))


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "executions.txt"
    monkeypatch.setenv(RECORD_VAR, str(path))
    return path


def request(job_id: str, pipeline: str, **options: Any) -> RunRequest:
    return RunRequest(job_id, pipeline, {}, options)


def no_stop(*_: Any) -> bool:
    return False


def fan_out(
    runner: KedroRunner, job_id: str, pipeline: str, seconds: dict[str, float] | None = None
) -> tuple[dict[str, Any], RunOutcome]:
    """Every group in its level's order (what the state machine does), then the commit;
    with ``seconds`` (past node durations) the plan is packed as the consumer packs it."""
    req = request(job_id, pipeline)
    plan = runner.fan_out_plan(req)
    assert plan is not None
    if seconds is not None:
        plan = fit_plan(plan, seconds, 5.0)
        assert plan is not None
    for level in plan["levels"]:
        for group_id in level:
            ran = runner.run_group(req, plan, group_id, no_stop, deadline=time.monotonic() + 30)
            assert ran.status == "completed", ran.error_message
    committed = runner.commit_groups(job_id, plan)
    runner.discard_groups(job_id)
    return plan, committed


def committed(root: Path) -> dict[str, Any]:
    table = pd.read_csv(root / "data/08_reporting/table.csv").to_dict("list")
    (version,) = list((root / "data/06_models/model_a.pickle").iterdir())
    with open(version / "model_a.pickle", "rb") as handle:
        model = pickle.load(handle)
    return {"table": table, "model_a": model}


def test_branches_plan_three_groups_then_the_join(runner: KedroRunner) -> None:
    plan = runner.fan_out_plan(request("job-plan", "branches"))
    assert plan is not None
    groups = {g["id"]: g for g in plan["groups"]}
    first, second = plan["levels"]
    assert sorted(groups[g]["nodes"] for g in first) == [
        ["prep_a", "fit_a"],
        ["prep_b", "fit_b"],
        ["prep_c", "fit_c"],
    ]
    (join,) = second
    assert groups[join]["nodes"] == ["report"]
    assert sorted(groups[join]["depends_on"]) == sorted(first)
    assert plan["total_nodes"] == 7
    assert plan["grouped_by"] == "branches"  # the DAG's shape, not the user's statement


def test_namespaces_are_groups(runner: KedroRunner) -> None:
    plan = runner.fan_out_plan(request("job-ns", "regions"))
    assert plan is not None
    names = [[next(g["name"] for g in plan["groups"] if g["id"] == i) for i in level]
             for level in plan["levels"]]  # fmt: skip
    assert sorted(names[0]) == ["north", "south"] and names[1] == ["collect"]
    assert plan["grouped_by"] == "namespace"


def test_a_pipeline_without_independent_groups_does_not_fan_out(runner: KedroRunner) -> None:
    assert runner.fan_out_plan(request("job-lin", "linear")) is None
    # Filtered to one branch, nothing is left to run side by side.
    assert (
        runner.fan_out_plan(request("job-one", "branches", node_names=["prep_a", "fit_a"])) is None
    )


def test_fanned_out_job_equals_one_worker_run(
    runner: KedroRunner, data_root: Path, tmp_path: Path, record: Path
) -> None:
    _, outcome = fan_out(runner, "job-fan", "branches")
    assert outcome.status == "completed", outcome.error_message
    fanned = committed(data_root)
    assert sorted(record.read_text().split()) == sorted(
        ["prep_a", "prep_b", "prep_c", "fit_a", "fit_b", "fit_c", "report"]
    )  # each node ran exactly once
    assert not (data_root / ".kedro-jobs/groups/job-fan").exists()  # no staging left

    alone_root = tmp_path / "alone"
    alone = KedroRunner(runner.project_path, isolation="inline", data_root=str(alone_root))
    single = alone.run(request("job-one", "branches"), no_stop, deadline=time.monotonic() + 30)
    assert single.status == "completed"
    assert outcome.results == single.results == {"summary": {"total": 9.0, "branches": 3}}
    assert fanned == committed(alone_root)
    assert sorted(o["name"] for o in outcome.outputs) == sorted(o["name"] for o in single.outputs)
    assert outcome.progress.completed == outcome.progress.total == 7


def test_a_packed_group_runs_its_branches_on_one_worker(
    runner: KedroRunner, data_root: Path, record: Path
) -> None:
    """Branch c took too little to be worth a worker: it runs in branch a's group, and the
    job's results and files are those of the unpacked plan."""
    seconds = {"prep_a": 0.1, "fit_a": 9.0, "prep_b": 0.1, "fit_b": 8.0, "prep_c": 0.1,
               "fit_c": 0.2, "report": 0.1}  # fmt: skip
    plan, outcome = fan_out(runner, "job-packed", "branches", seconds)
    assert [g["nodes"] for g in plan["groups"]][1] == ["prep_b", "fit_b", "prep_c", "fit_c"]
    assert outcome.status == "completed", outcome.error_message
    assert outcome.results == {"summary": {"total": 9.0, "branches": 3}}
    assert sorted(record.read_text().split()) == sorted(
        ["prep_a", "prep_b", "prep_c", "fit_a", "fit_b", "fit_c", "report"]
    )
    assert committed(data_root)["table"]["branch"] == ["a", "b", "c"]


def test_namespaced_job_equals_one_worker_run(runner: KedroRunner) -> None:
    _, outcome = fan_out(runner, "job-regions", "regions")
    single = runner.run(request("job-r1", "regions"), no_stop, deadline=time.monotonic() + 30)
    assert outcome.status == single.status == "completed"
    assert outcome.results == single.results


def test_nothing_is_committed_before_the_commit(runner: KedroRunner, data_root: Path) -> None:
    req = request("job-wait", "branches")
    plan = runner.fan_out_plan(req)
    assert plan is not None
    for group_id in plan["levels"][0]:
        runner.run_group(req, plan, group_id, no_stop, deadline=time.monotonic() + 30)
    assert not (data_root / "data").exists()
    handovers = data_root / ".kedro-jobs/groups/job-wait"
    # Branch a's model is a file, handed over as its staged file; b's a value.
    assert json.loads((handovers / "g1" / "handover.json").read_text())["handover"]["files"]
    g2 = json.loads((handovers / "g2" / "handover.json").read_text())["handover"]
    assert list(g2["memory"]) == ["model_b"]
    runner.discard_groups("job-wait")
    assert not handovers.exists()


def test_a_failing_group_names_its_node(runner: KedroRunner) -> None:
    req = request("job-fail", "failing")
    plan = runner.fan_out_plan(req)
    assert plan is not None
    outcomes = [
        runner.run_group(req, plan, g, no_stop, deadline=time.monotonic() + 30)
        for g in plan["levels"][0]
    ]
    failed = [o for o in outcomes if o.status == "failed"]
    assert len(failed) == 1
    assert failed[0].error_message == "ValueError: branch b does not fit (node: fit_b)"


def test_a_group_stops_at_a_node_boundary_on_cancel(runner: KedroRunner, record: Path) -> None:
    req = request("job-cancel", "branches")
    plan = runner.fan_out_plan(req)
    assert plan is not None
    cancel = lambda completed, total, current: completed >= 1  # noqa: E731
    outcome = runner.run_group(req, plan, "g1", cancel, deadline=time.monotonic() + 30)
    assert outcome.status == "cancelled"
    assert record.read_text().split() == ["prep_a"]


class _Planted:
    """Unpickling this makes a folder: the proof that a refused hand-over was never loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


def _unsigned(folder: Path) -> None:
    index = folder / "handover.json"
    index.write_text(json.dumps(json.loads(index.read_text())["handover"]))


def _altered_index(folder: Path) -> None:
    index = folder / "handover.json"
    signed = json.loads(index.read_text())
    signed["handover"]["memory"]["model_b"] = "memory/planted.pkl"
    (folder / "memory/planted.pkl").write_bytes((folder / "memory/0.pkl").read_bytes())
    index.write_text(json.dumps(signed))


def _signed_by_another_key(folder: Path) -> None:
    """An index that matches the planted file, signed with a key not this deployment's."""
    index = folder / "handover.json"
    raw = json.loads(index.read_text())["handover"]
    raw["digests"]["memory/0.pkl"] = hashlib.sha256(
        (folder / "memory/0.pkl").read_bytes()
    ).hexdigest()
    payload = json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
    index.write_text(json.dumps({"handover": raw, "signature": Signer(b"not ours").sign(payload)}))


@pytest.mark.parametrize(
    ("tamper", "refusal"),
    [
        (None, "was altered: memory/0.pkl does not match its signed index"),
        (_unsigned, "is not signed: refused"),
        (_altered_index, "was altered or signed with another key"),
        (_signed_by_another_key, "was altered or signed with another key"),
    ],
)
def test_a_hand_over_not_signed_by_this_deployment_is_refused_before_it_is_unpickled(
    project: Path, data_root: Path, tmp_path: Path, record: Path, tamper: Any, refusal: str
) -> None:  # fmt: skip
    runner = KedroRunner(project, isolation="inline", data_root=str(data_root),
                         checkpoint_key="this deployment")  # fmt: skip
    req = request("job-signed", "branches")
    plan = runner.fan_out_plan(req)
    assert plan is not None
    for group_id in plan["levels"][0]:
        runner.run_group(req, plan, group_id, no_stop, deadline=time.monotonic() + 30)
    g2 = data_root / ".kedro-jobs/groups/job-signed/g2"
    marker = tmp_path / "unpickled"
    # Whoever can write under the data root puts code in branch b's value...
    (g2 / "memory/0.pkl").write_bytes(pickle.dumps(_Planted(marker)))
    if tamper is not None:  # ...and covers its tracks, as far as it can
        tamper(g2)
    (join,) = plan["levels"][1]
    outcome = runner.run_group(req, plan, join, no_stop, deadline=time.monotonic() + 30)
    assert outcome.status == "failed"
    assert outcome.error_message is not None and refusal in outcome.error_message
    assert "hand-over" in outcome.error_message and "g2" in outcome.error_message
    assert not marker.exists()  # never unpickled
    assert "report" not in record.read_text().split()  # the join never ran


def test_another_job_s_hand_over_is_refused(project: Path, data_root: Path) -> None:
    runner = KedroRunner(project, isolation="inline", data_root=str(data_root),
                         checkpoint_key="this deployment")  # fmt: skip
    req = request("job-mine", "branches")
    plan = runner.fan_out_plan(req)
    assert plan is not None
    for group_id in plan["levels"][0]:
        runner.run_group(req, plan, group_id, no_stop, deadline=time.monotonic() + 30)
    # Another job's hand-overs (the same deployment's key), copied in place of this job's.
    mine = data_root / ".kedro-jobs/groups/job-mine"
    shutil.copytree(mine, data_root / ".kedro-jobs/groups/job-theirs")
    theirs = request("job-theirs", "branches")
    (join,) = plan["levels"][1]
    outcome = runner.run_group(theirs, plan, join, no_stop, deadline=time.monotonic() + 30)
    assert outcome.status == "failed" and outcome.error_message is not None
    assert "is not group g1 of job job-theirs: refused" in outcome.error_message


def test_the_commit_refuses_an_altered_staged_file(project: Path, data_root: Path) -> None:
    runner = KedroRunner(project, isolation="inline", data_root=str(data_root),
                         checkpoint_key="this deployment")  # fmt: skip
    req = request("job-commit", "branches")
    plan = runner.fan_out_plan(req)
    assert plan is not None
    for level in plan["levels"]:
        for group_id in level:
            ran = runner.run_group(req, plan, group_id, no_stop, deadline=time.monotonic() + 30)
            assert ran.status == "completed", ran.error_message
    report = next(g["id"] for g in plan["groups"] if g["name"] == "report")
    staged = data_root / f".kedro-jobs/groups/job-commit/{report}/staged"
    (table,) = [p for p in staged.rglob("*") if p.is_file()]
    table.write_text("branch,weight\nz,1e9\n")
    outcome = runner.commit_groups("job-commit", plan)
    assert outcome.status == "failed" and outcome.error_message is not None
    assert "does not match its signed index" in outcome.error_message
    assert not (data_root / "data").exists()  # nothing committed


def test_a_group_too_long_for_its_invocation_fails_saying_so_and_is_not_fanned_out_again(
    runner: KedroRunner, record: Path
) -> None:
    # Half a second: on a loaded machine the group's first node starts well within it.
    req = RunRequest("job-long", "branches", {"prep_pause": 1.5}, {})
    plan = runner.fan_out_plan(req)
    assert plan is not None
    outcome = runner.run_group(req, plan, "g1", no_stop, deadline=time.monotonic() + 0.5)
    assert outcome.status == "failed" and outcome.error_message is not None
    assert outcome.error_message.startswith("Group g1 did not finish within one invocation")
    assert "Job exceeded its time budget" in outcome.error_message
    assert '"fan_out": false' in outcome.error_message
    assert "fit_a" not in record.read_text().split()
    # The time it took is noted: with it, the pipeline's next job stays on one worker.
    assert fit_plan(plan, outcome.node_durations, 0.0, invocation_seconds=0.5) is None


def test_a_rerun_reads_its_reused_groups_as_the_stopped_job_s_only(
    project: Path, data_root: Path, record: Path
) -> None:
    """A rerun from failure's reused group: its hand-over is read from the stopped job's
    kept staging and accepted as that job's only; the versioned file it staged is committed
    in the rerun's own save version; what the rerun keeps besides goes, the stopped job's
    kept hand-overs stay."""
    runner = KedroRunner(project, isolation="inline", data_root=str(data_root),
                         checkpoint_key="this deployment")  # fmt: skip
    old = request("job-old", "branches")
    plan = runner.fan_out_plan(old)
    assert plan is not None
    first, (join,) = plan["levels"]
    reused = {g: "job-old" for g in first[::2]}  # g1 and g3 completed; g2 failed
    for group_id in reused:
        ran = runner.run_group(old, plan, group_id, no_stop, deadline=time.monotonic() + 30)
        assert ran.status == "completed", ran.error_message
    runner.discard_groups("job-old", keep=list(reused))  # the failed job keeps them
    kept = data_root / ".kedro-jobs/groups/job-old"
    assert sorted(p.name for p in kept.iterdir()) == sorted(reused)
    record.write_text("")

    new = request("job-new", "branches")
    fresh = runner.fan_out_plan(new)
    assert fresh is not None
    rerun = {**plan, "save_version": fresh["save_version"], "reused": reused}
    for group_id in [g for g in first if g not in reused] + [join]:
        ran = runner.run_group(new, rerun, group_id, no_stop, deadline=time.monotonic() + 30)
        assert ran.status == "completed", ran.error_message
    outcome = runner.commit_groups("job-new", rerun)
    runner.discard_groups("job-new")

    assert outcome.status == "completed", outcome.error_message
    assert outcome.results == {"summary": {"total": 9.0, "branches": 3}}
    assert sorted(record.read_text().split()) == ["fit_b", "prep_b", "report"]
    (version,) = [p.name for p in (data_root / "data/06_models/model_a.pickle").iterdir()]
    assert version == fresh["save_version"]  # reused g1's file, in the rerun's version
    assert not (data_root / ".kedro-jobs/groups/job-new").exists()
    assert sorted(p.name for p in kept.iterdir()) == sorted(reused)

    # A hand-over kept under the stopped job's name but signed as another job's is refused.
    other = request("job-other", "branches")
    runner.run_group(other, plan, first[0], no_stop, deadline=time.monotonic() + 30)
    shutil.rmtree(kept / first[0])
    shutil.copytree(data_root / f".kedro-jobs/groups/job-other/{first[0]}", kept / first[0])
    again = runner.run_group(request("job-again", "branches"), rerun, join, no_stop,
                             deadline=time.monotonic() + 30)  # fmt: skip
    assert again.status == "failed" and again.error_message is not None
    assert f"is not group {first[0]} of job job-old: refused" in again.error_message
