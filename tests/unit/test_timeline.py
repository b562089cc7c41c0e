"""The node timeline's rules: entries in run order, what a segment's end makes of a running
node, a resumed run, the stored form and its size, and the ETA from past durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kedro_jobs.core.models import Job
from kedro_jobs.core.store.items import from_item, to_item
from kedro_jobs.core.timeline import MAX_TIMELINE_NODES, NodeRun, Timeline, expected_end

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
