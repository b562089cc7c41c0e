"""The node timeline's rules: entries in run order, what a segment's end makes of a running
node, a resumed run, the stored form and its size, and the ETA from past durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kedro_jobs.core.models import GroupRun, Job
from kedro_jobs.core.store.items import from_item, to_item
from kedro_jobs.core.timeline import (
    MAX_TIMELINE_NODES,
    NodeRun,
    Timeline,
    combine_groups,
    expected_end,
    expected_fan_out_end,
    group_cap,
    group_part,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_nodes_finish_in_run_order_with_start_from_their_duration() -> None:
    t = Timeline([], segment=1, compute="lambda")
    t.began("a", at(0))
    t.finished("a", 2.0, at(2))
    t.began("b", at(2))
    nodes = t.nodes()
    assert [(n.name, n.status) for n in nodes] == [("a", "completed"), ("b", "running")]
    assert nodes[0].started_at == at(0) and nodes[0].finished_at == at(2)
    assert nodes[1].started_at == at(2) and nodes[1].duration is None


def test_a_failed_run_fails_its_running_node_and_a_hand_off_drops_it() -> None:
    failed = Timeline([], segment=1, compute="lambda")
    failed.began("a", at(0))
    failed.ended("failed", at(3))
    assert [(n.status, n.duration) for n in failed.nodes()] == [("failed", 3.0)]
    handed = Timeline([], segment=1, compute="lambda")
    handed.finished("a", 1.0, at(1))
    handed.began("b", at(1))
    handed.ended("continued", at(1))
    assert [n.name for n in handed.nodes()] == ["a"]


def test_a_later_segment_keeps_the_earlier_ones_entries_and_a_takeover_drops_unsaved_ones() -> None:
    first = Timeline([], segment=1, compute="lambda")
    for i, name in enumerate("abc"):
        first.finished(name, 1.0, at(i + 1))
    # The next segment goes on from a checkpoint after two nodes (the third was not saved in
    # it), on Fargate.
    second = Timeline(first.nodes(), segment=2, compute="fargate")
    second.resume(2)
    second.began("c", at(10))
    nodes = second.nodes()
    assert [(n.name, n.segment, n.status) for n in nodes] == [
        ("a", 1, "completed"), ("b", 1, "completed"), ("c", 2, "running")
    ]  # fmt: skip
    assert nodes[-1].compute == "fargate"


def test_a_huge_pipeline_keeps_the_record_far_below_dynamodbs_item_limit() -> None:
    t = Timeline([], segment=1, compute="lambda")
    for i in range(5000):
        t.finished(f"namespace_{i // 100}.a_rather_long_node_name_{i}", 0.5, at(i))
    job = Job.new(pipeline_name="p", parameters={}, options={}, user_id="u")
    job = job.model_copy(update={"nodes": t.nodes(), "nodes_omitted": t.omitted})
    item = to_item(job)
    assert len(item["nodes"]["S"]) < 40_000
    back = from_item(item)
    assert back.nodes is not None and len(back.nodes) == MAX_TIMELINE_NODES
    assert back.nodes_omitted == 5000 - MAX_TIMELINE_NODES
    assert back.nodes[-1] == job.nodes[-1]  # type: ignore[index]


def test_eta_from_past_durations_less_what_the_running_node_has_run() -> None:
    nodes = [
        NodeRun(name="a", status="completed", started_at=at(0), duration=1.0),
        NodeRun(name="b", status="running", started_at=at(1)),
    ]
    estimates = {"a": 1.0, "b": 4.0, "c": 3.0}
    assert expected_end(nodes, 3, estimates, at(2)) == at(2 + 3 + 3)
    assert expected_end(nodes, 3, {}, at(2)) is None


# -- a fanned-out job: each group's part, combined when the record is read ----------------------


def group_entry(timeline: Timeline, worker: str, cap: int = MAX_TIMELINE_NODES) -> dict[str, Any]:
    return {"status": "running", "worker": worker, "timeline": group_part(timeline, cap)}


def test_groups_parts_combine_by_level_then_start_with_each_groups_worker() -> None:
    a = Timeline([], segment=None, compute=None)  # level 0, began second
    a.finished("prep_a", 2.0, at(3))
    a.began("fit_a", at(3))
    b = Timeline([], segment=None, compute=None)  # level 0, began first
    b.finished("prep_b", 2.0, at(2))
    b.began("fit_b", at(2))
    b.ended("failed", at(4))
    join = Timeline([], segment=None, compute=None)  # level 1
    join.finished("report", 1.0, at(6))
    groups = {
        "g3": group_entry(join, "w3"),
        "g1": group_entry(a, "w1"),
        "g2": group_entry(b, "w2"),
        "g4": {"status": "pending"},  # not claimed yet: no part
        "g5": {"status": "running", "timeline": "not json"},  # unreadable: left out
    }
    combined = combine_groups(groups, [["g1", "g2", "g4", "g5"], ["g3"]])
    assert combined is not None
    nodes, omitted = combined
    assert [(n["name"], n["status"], n["group"], n["worker"]) for n in nodes] == [
        ("prep_b", "completed", "g2", "w2"),
        ("prep_a", "completed", "g1", "w1"),
        ("fit_b", "failed", "g2", "w2"),
        ("fit_a", "running", "g1", "w1"),
        ("report", "completed", "g3", "w3"),
    ]
    assert omitted == 0
    assert nodes[2]["finished_at"] == at(4) and nodes[3]["finished_at"] is None
    assert combine_groups({"g1": {"status": "pending"}}, [["g1"]]) is None


def test_a_fanned_out_record_reads_its_groups_nodes_as_the_one_worker_shape() -> None:
    t = Timeline([], segment=None, compute=None)
    t.finished("prep_a", 1.5, at(1.5))
    job = Job.new(pipeline_name="p", parameters={}, options={}, user_id="u")
    groups = {"g1": GroupRun(nodes=1, worker="req-1/ab")}
    job = job.model_copy(update={"fan_out": {"levels": [["g1"]], "groups": []}, "groups": groups})
    item = to_item(job)
    item["groups"]["M"]["g1"]["M"]["timeline"] = {"S": group_part(t, MAX_TIMELINE_NODES)}
    back = from_item(item)
    assert back.nodes == [
        NodeRun(name="prep_a", status="completed", started_at=at(0), finished_at=at(1.5),
                duration=1.5, group="g1", worker="req-1/ab")
    ]  # fmt: skip
    assert from_item(item, lenient=True).nodes == back.nodes


def test_many_large_groups_keep_the_whole_job_under_the_timelines_cap() -> None:
    groups: dict[str, Any] = {}
    for g in range(10):
        t = Timeline([], segment=None, compute=None)
        for i in range(5000):
            t.finished(f"namespace_{g}.a_rather_long_node_name_{i}", 0.5, at(i))
        groups[f"g{g + 1}"] = group_entry(t, f"worker-{g}", cap=group_cap(10))
    assert sum(len(e["timeline"]) for e in groups.values()) < 40_000
    combined = combine_groups(groups, [list(groups)])
    assert combined is not None
    nodes, omitted = combined
    assert len(nodes) == MAX_TIMELINE_NODES and omitted == 50_000 - MAX_TIMELINE_NODES


def _fan_plan() -> dict[str, Any]:
    """Three branches (g1-g3) at once, then a join (g4)."""
    return {
        "groups": [
            {"id": "g1", "name": "a", "nodes": ["prep_a", "fit_a"]},
            {"id": "g2", "name": "b", "nodes": ["prep_b", "fit_b"]},
            {"id": "g3", "name": "c", "nodes": ["prep_c", "fit_c"]},
            {"id": "g4", "name": "report", "nodes": ["report"]},
        ],
        "levels": [["g1", "g2", "g3"], ["g4"]],
        "node_seconds": {"prep_a": 10.0, "fit_a": 50.0, "prep_b": 5.0, "fit_b": 20.0,
                         "prep_c": 5.0, "fit_c": 30.0, "report": 4.0},
    }  # fmt: skip


def test_a_fanned_out_jobs_eta_is_its_critical_path_over_the_levels() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    plan = _fan_plan()
    # Nothing started: the longest branch (60 s), then the join (4 s); not the sum (124 s).
    pending = {g: {"status": "pending"} for g in ("g1", "g2", "g3", "g4")}
    assert expected_fan_out_end(plan, pending, [], now) == now + timedelta(seconds=64)
    # a is 30 s into fit_a (20 s left); b is done; c waits (35 s): the level ends with c.
    groups = {"g1": {"status": "running"}, "g2": {"status": "completed"},
              "g3": {"status": "pending"}, "g4": {"status": "pending"}}  # fmt: skip
    nodes = [
        {"name": "prep_a", "status": "completed", "group": "g1",
         "started_at": now - timedelta(seconds=40)},
        {"name": "fit_a", "status": "running", "group": "g1",
         "started_at": now - timedelta(seconds=30)},
    ]  # fmt: skip
    assert expected_fan_out_end(plan, groups, nodes, now) == now + timedelta(seconds=35 + 4)
    # c done too: a's 20 s left, then the join.
    groups["g3"] = {"status": "completed"}
    assert expected_fan_out_end(plan, groups, nodes, now) == now + timedelta(seconds=20 + 4)
    # A node past its estimate has nothing left (not a negative time).
    late = [nodes[0], {**nodes[1], "started_at": now - timedelta(seconds=90)}]
    assert expected_fan_out_end(plan, groups, late, now) == now + timedelta(seconds=4)


def test_a_fanned_out_job_without_past_durations_has_no_eta_and_untimed_nodes_count_the_mean(
) -> None:  # fmt: skip
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    pending = {g: {"status": "pending"} for g in ("g1", "g2", "g3", "g4")}
    assert expected_fan_out_end({**_fan_plan(), "node_seconds": {}}, pending, [], now) is None
    plan = {**_fan_plan(), "node_seconds": {"prep_a": 2.0, "fit_a": 4.0}}  # the mean: 3 s
    assert expected_fan_out_end(plan, pending, [], now) == now + timedelta(seconds=6 + 3)
