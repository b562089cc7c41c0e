"""Rerun from failure of a fanned-out job (docs/fan-out.md#rerun-from-failure): which groups
a stopped job keeps, which a rerun reuses and from whom, for how long (time injected), and
the plan the rerun fans out with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kedro_jobs.core.fanout import execution_input, transitions
from kedro_jobs.core.models import GroupRun, Job
from kedro_jobs.core.rerun import (
    NotReusable,
    kept_groups,
    kept_groups_fields,
    rerun_fields,
    reusable_until,
)
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store.groups import reused_group
from kedro_jobs.core.store.items import from_item, to_item, to_native

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
ROOT = "s3://bucket/data/.kedro-jobs/groups"
PLAN = {
    "groups": [
        {"id": "g1", "name": "a", "nodes": ["prep_a", "fit_a"], "depends_on": []},
        {"id": "g2", "name": "b", "nodes": ["prep_b", "fit_b"], "depends_on": []},
        {"id": "g3", "name": "c", "nodes": ["prep_c", "fit_c"], "depends_on": []},
        {"id": "g4", "name": "report", "nodes": ["report"], "depends_on": ["g1", "g2", "g3"]},
    ],
    "levels": [["g1", "g2", "g3"], ["g4"]],
    "free_outputs": ["summary"],
    "total_nodes": 7,
    "grouped_by": "branches",
    "save_version": "2026-12-07T05.00.00.000Z",
}


def _stopped(job_id: str = "j1", statuses: str = "cfcp", **fields: object) -> Job:
    """A fanned-out job; ``statuses``: each group's (completed, failed, cancelled, pending,
    reused)."""
    names = {"c": "completed", "f": "failed", "x": "cancelled", "p": "pending", "r": "reused"}
    groups = {f"g{i}": GroupRun(status=names[s]) for i, s in enumerate(statuses, start=1)}
    job = Job.new(pipeline_name="fragile", parameters={}, options={}, user_id="u", job_id=job_id)
    update: dict[str, object] = {"status": JobStatus.FAILED, "fan_out": PLAN, "groups": groups}
    return job.model_copy(update={**update, **fields})


def _kept(job: Job) -> Job:
    fields = kept_groups_fields(job, f"{ROOT}/{job.id}", NOW)
    assert fields is not None
    return job.model_copy(update=fields)


def test_a_stopped_job_keeps_the_groups_that_completed_for_seven_days_less_an_hour() -> None:
    job = _stopped()
    assert kept_groups(job) == {"g1": "j1", "g3": "j1"}
    assert kept_groups_fields(job, f"{ROOT}/j1", NOW) == {
        "checkpoint": f"{ROOT}/j1",
        "reusable_until": reusable_until(NOW),
    }
    assert kept_groups_fields(_stopped(statuses="xfxp"), f"{ROOT}/j1", NOW) is None


def test_a_rerun_reuses_the_kept_groups_whose_hand_overs_are_there() -> None:
    job = _kept(_stopped())
    looked: list[str] = []

    def exists(path: str) -> bool:
        looked.append(path)
        return True

    fields = rerun_fields(job, NOW + timedelta(days=6), exists)
    assert looked == [f"{ROOT}/j1/g1/handover.json", f"{ROOT}/j1/g3/handover.json"]
    assert fields["reused_from"] == "j1"
    assert fields["reusable_until"] == job.reusable_until
    plan = fields["reuse_plan"]
    assert plan["reused"] == {"g1": "j1", "g3": "j1"}
    assert plan["groups"] == PLAN["groups"] and plan["levels"] == PLAN["levels"]
    assert "save_version" not in plan  # the rerun's own, made when it fans out
    assert "checkpoint" not in fields  # it fans out: no one-worker checkpoint to go on from

    # A hand-over gone (removed by hand): that group runs again.
    fields = rerun_fields(job, NOW, lambda path: "/g3/" in path)
    assert fields["reuse_plan"]["reused"] == {"g3": "j1"}


def test_the_refusals_of_a_fanned_out_job_say_why() -> None:
    plainly = "retry it without from_failure to run every node again"
    kept = _kept(_stopped())
    for job, now, exists, why in [
        (_stopped(status=JobStatus.COMPLETED), NOW, True, "it completed"),
        (_stopped(statuses="xfxp"), NOW, True, "no group of it completed"),
        (_stopped(), NOW, True, "no group of it completed"),  # from before such reruns
        (kept, NOW + timedelta(days=7), True, "the data it kept expired at"),
        (kept, NOW, False, f"the data it kept is gone from {ROOT}/j1"),
    ]:
        with pytest.raises(NotReusable) as refused:
            rerun_fields(job, now, lambda _, there=exists: there)
        text = str(refused.value)
        assert text.startswith(f"Job 'j1' is {job.status}; it cannot be rerun from failure: ")
        assert why in text and text.endswith(plainly), text


def test_a_rerun_that_fails_again_keeps_its_own_groups_and_those_it_reused() -> None:
    first = _kept(_stopped())
    rerun = rerun_fields(first, NOW, lambda _: True)
    # The rerun (j2) fanned out: g1, g3 reused; g2 completed this time, g4 failed.
    plan = {**rerun["reuse_plan"], "save_version": "v2"}
    later = NOW + timedelta(days=2)
    again = _stopped("j2", "rcrf", fan_out=plan, reused_from="j1",
                     reusable_until=rerun["reusable_until"])  # fmt: skip
    assert kept_groups(again) == {"g1": "j1", "g2": "j2", "g3": "j1"}
    fields = kept_groups_fields(again, f"{ROOT}/j2", later)
    # Offered as long as the oldest of what it reuses is kept.
    assert fields == {"checkpoint": f"{ROOT}/j2", "reusable_until": first.reusable_until}
    second = rerun_fields(again.model_copy(update=fields), later, lambda _: True)
    assert second["reuse_plan"]["reused"] == {"g1": "j1", "g2": "j2", "g3": "j1"}
    assert second["reused_from"] == "j2"
    # One that completed nothing of its own is offered as long as what it reused.
    none_own = _stopped("j2", "rfrx", fan_out=plan, reusable_until=first.reusable_until)
    assert kept_groups_fields(none_own, f"{ROOT}/j2", later) == {
        "checkpoint": f"{ROOT}/j2",
        "reusable_until": first.reusable_until,
    }
    assert rerun_fields(none_own.model_copy(update={"checkpoint": f"{ROOT}/j2"}), later,
                        lambda _: True)["reused_from"] == "j1"  # fmt: skip


def test_the_execution_runs_only_the_groups_not_reused() -> None:
    plan = {**PLAN, "reused": {"g1": "j1", "g3": "j1"}}
    assert execution_input("j2", plan) == {"job_id": "j2", "levels": [["g2"], ["g4"]]}
    assert transitions(plan) == 1 + 2 + 2 + 1 < transitions(PLAN)
    every_first = {**PLAN, "reused": {"g1": "j1", "g2": "j1", "g3": "j1"}}
    assert execution_input("j2", every_first)["levels"] == [["g4"]]


def test_a_reused_group_is_done_and_its_nodes_are_reused_on_the_timeline() -> None:
    job = Job.new(pipeline_name="p", parameters={}, options={}, user_id="u", job_id="j2")
    item = to_item(job.model_copy(update={"status": JobStatus.RUNNING, "fan_out": PLAN}))
    item["groups"] = to_native({
        "g1": reused_group(["prep_a", "fit_a"]),
        "g2": GroupRun(nodes=2).model_dump(mode="json"),
    })  # fmt: skip
    read = from_item(item)
    assert read.groups is not None and read.groups["g1"].status == "reused"
    assert [(n.name, n.status, n.group) for n in read.nodes or []] == [
        ("prep_a", "reused", "g1"),
        ("fit_a", "reused", "g1"),
    ]
    assert read.progress is not None
    assert (read.progress.completed_nodes, read.progress.total_nodes) == (2, 4)


def test_a_rerun_cancelled_before_it_fanned_out_offers_what_it_was_to_reuse() -> None:
    first = _kept(_stopped())
    fields = rerun_fields(first, NOW, lambda _: True)
    assert fields["reuse_plan"]["kept_at"] == f"{ROOT}/j1"
    job = Job.new(pipeline_name="fragile", parameters={}, options={}, user_id="u", job_id="j2")
    pending_cancelled = job.model_copy(update={"status": JobStatus.CANCELLED, **fields})
    again = rerun_fields(pending_cancelled, NOW, lambda _: True)
    assert again["reused_from"] == "j1"
    assert again["reuse_plan"]["reused"] == {"g1": "j1", "g3": "j1"}
    assert again["reusable_until"] == first.reusable_until
