"""A fanned-out job in the terminal: each node's state comes from its group (several run at
once), and `--watch` draws a bar per group with its status, nodes done and worker."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from kedro_jobs.cli.groups import node_states, worker
from kedro_jobs.cli.watch import watch

PLAN = {
    "groups": [
        {"id": "g1", "name": "prep_a", "nodes": ["prep_a", "fit_a"], "depends_on": []},
        {"id": "g2", "name": "prep_b", "nodes": ["prep_b", "fit_b"], "depends_on": []},
        {"id": "g3", "name": "report", "nodes": ["report"], "depends_on": ["g1", "g2"]},
    ],
    "levels": [["g1", "g2"], ["g3"]],
}
NAMES = ["prep_a", "fit_a", "prep_b", "fit_b", "report"]


def record(status: str, groups: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"id": "j1", "pipeline_name": "branches", "status": status, "options": {},
            "fan_out": PLAN, "groups": groups,
            "progress": {"total_nodes": 5, "completed_nodes": 2}}  # fmt: skip


def test_two_groups_running_show_two_nodes_running() -> None:
    job = record("running", {
        "g1": {"status": "running", "nodes": 2, "completed_nodes": 1, "current_node": "fit_a"},
        "g2": {"status": "running", "nodes": 2, "completed_nodes": 0, "current_node": "prep_b"},
        "g3": {"status": "pending", "nodes": 1},
    })  # fmt: skip
    assert dict(node_states(job, NAMES)) == {
        "prep_a": "done", "fit_a": "running", "prep_b": "running", "fit_b": "pending",
        "report": "pending",
    }  # fmt: skip


def test_a_failed_group_fails_its_node_and_the_rest_did_not_run() -> None:
    job = record("failed", {
        "g1": {"status": "completed", "nodes": 2, "completed_nodes": 2},
        "g2": {"status": "failed", "nodes": 2, "completed_nodes": 1},
        "g3": {"status": "pending", "nodes": 1},
    })  # fmt: skip
    assert dict(node_states(job, NAMES)) == {
        "prep_a": "done", "fit_a": "done", "prep_b": "done", "fit_b": "failed",
        "report": "skipped",
    }  # fmt: skip


class Api:
    """The API as `--watch` reads it: the pipeline, then the job's record at each poll."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def pipeline(self, name: str) -> dict[str, Any]:
        return {"nodes": [{"name": n, "inputs": [], "outputs": [], "tags": [], "namespace": None}
                          for n in NAMES]}  # fmt: skip

    def job(self, job_id: str) -> dict[str, Any]:
        return self.records.pop(0)


def test_watch_draws_a_bar_per_group_with_its_worker() -> None:
    running = record("running", {
        "g1": {"status": "running", "nodes": 2, "completed_nodes": 1, "current_node": "fit_a",
               "worker": "req-1/aa", "started_at": "2026-01-01T00:00:00Z"},
        "g2": {"status": "running", "nodes": 2, "completed_nodes": 0, "current_node": "prep_b",
               "worker": "req-2/bb", "started_at": "2026-01-01T00:00:00Z"},
        "g3": {"status": "pending", "nodes": 1},
    })  # fmt: skip
    done = record("completed", {
        g: {"status": "completed", "nodes": n, "completed_nodes": n, "worker": f"req-{g}/cc",
            "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:00:02Z"}
        for g, n in (("g1", 2), ("g2", 2), ("g3", 1))
    })  # fmt: skip
    console = Console(record=True, width=140)
    assert watch(Api([done]), running, console, interval=0) == 0  # type: ignore[arg-type]
    lanes = [line.split() for line in console.export_text().splitlines() if "group g" in line]
    assert [words[1:3] for words in lanes] == [["g1", "prep_a"], ["g2", "prep_b"], ["g3", "report"]]
    # Its status, nodes done of its own, the worker (without the claim's token), its time.
    assert lanes[0][-6:] == ["completed", "2/2", "on", "req-g1", "2.00", "s"]
    assert lanes[2][-6:] == ["completed", "1/1", "on", "req-g3", "2.00", "s"]


def test_a_group_on_fargate_shows_fargate_and_its_task_not_the_claim_token() -> None:
    arn = "arn:aws:ecs:eu-west-1:123456789012:task/kedro-jobs-jobs/0f1e2d3c4b5a"
    assert worker({"worker": f"{arn}/ab12cd34", "compute": "fargate"}) == "fargate 0f1e2d3c4b5a"
    assert worker({"worker": "local:4242/ab12cd34", "compute": "fargate"}) == "fargate local:4242"
    assert worker({"worker": "req-1/ab12cd34", "compute": "lambda"}) == "req-1"
    assert worker({"worker": "req-1/ab12cd34"}) == "req-1"
    assert worker({}) == ""


def test_status_shows_a_running_fanned_out_jobs_eta() -> None:
    from datetime import UTC, datetime, timedelta

    from kedro_jobs.cli.render import show_job

    running = record("running", {
        "g1": {"status": "running", "nodes": 2, "completed_nodes": 1, "current_node": "fit_a",
               "worker": "req-1/aa", "started_at": "2026-01-01T00:00:00Z"},
        "g2": {"status": "pending", "nodes": 2}, "g3": {"status": "pending", "nodes": 1},
    })  # fmt: skip
    running["eta"] = (datetime.now(UTC) + timedelta(seconds=90)).isoformat()
    console = Console(record=True, width=140)
    show_job(console, {**running, "created_at": "2026-01-01T00:00:00Z", "user_id": "u"})
    eta = [line for line in console.export_text().splitlines() if line.split()[:1] == ["eta"]]
    assert len(eta) == 1 and "s left" in eta[0]
