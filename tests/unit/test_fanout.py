"""Fan-out's pure parts: the opt-out on submit, the state machine's messages, whether a plan
is worth its workers, what an execution costs, and a fanned-out record's progress."""

from __future__ import annotations

import json
from typing import Any

from kedro_jobs.cli.commands import request_body
from kedro_jobs.cli.main import build_parser
from kedro_jobs.core.fanout import parse_task, transitions, worth_fanning_out
from kedro_jobs.core.models import GroupRun, Job
from kedro_jobs.core.requests import JobRequest
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import from_item, to_item

# Three branches of two nodes, then a join (tests/support/fanout_project.py's shape).
PLAN: dict[str, Any] = {
    "groups": [
        {"id": "g1", "name": "a", "nodes": ["prep_a", "fit_a"], "depends_on": []},
        {"id": "g2", "name": "b", "nodes": ["prep_b", "fit_b"], "depends_on": []},
        {"id": "g3", "name": "c", "nodes": ["prep_c", "fit_c"], "depends_on": []},
        {"id": "g4", "name": "report", "nodes": ["report"], "depends_on": ["g1", "g2", "g3"]},
    ],
    "levels": [["g1", "g2", "g3"], ["g4"]],
    "free_outputs": ["summary", "table"],
    "total_nodes": 7,
    "save_version": "v",
}


def test_fan_out_false_is_a_run_option_on_submit_and_in_the_cli() -> None:
    request = JobRequest.model_validate({"pipeline_name": "p", "fan_out": False})
    assert request.options.given() == {"fan_out": False}
    cli = request_body(build_parser().parse_args(["submit", "p", "--no-fan-out"]))
    assert cli["fan_out"] is False
    assert "fan_out" not in request_body(build_parser().parse_args(["submit", "p"]))


def test_only_the_state_machine_s_messages_are_fan_out_tasks() -> None:
    task = parse_task(json.dumps({"fanout": "group", "job_id": "j-1", "group": "g2", "token": "t"}))
    assert task is not None and (task.fanout, task.group) == ("group", "g2")
    assert parse_task(json.dumps({"version": 1, "pipeline_name": "p"})) is None  # a job
    assert parse_task("not json") is None
    assert parse_task(json.dumps({"fanout": "group", "job_id": "../x", "token": "t"})) is None


def test_groups_too_small_for_a_worker_of_their_own_do_not_fan_out() -> None:
    quick = dict.fromkeys(["prep_a", "prep_b", "prep_c", "fit_a", "fit_b", "fit_c"], 0.5)
    assert not worth_fanning_out(PLAN, quick, 5.0)
    slow = {**quick, "fit_a": 20.0, "fit_b": 20.0}
    assert worth_fanning_out(PLAN, slow, 5.0)  # two groups of one level are worth it
    assert not worth_fanning_out(PLAN, {}, 5.0)  # never timed: the first run is on one worker
    assert worth_fanning_out(PLAN, {}, 0.0)


def test_an_execution_s_state_transitions_are_counted_for_its_cost() -> None:
    # The levels' Map, 2 inner Maps, 4 group tasks, the commit: $0.0002 a job at $25/million.
    assert transitions(PLAN) == 1 + 2 + 4 + 1


def test_a_fanned_out_job_s_progress_counts_the_nodes_of_every_group() -> None:
    job = Job.new(pipeline_name="branches", parameters={}, options={}, user_id="u")
    groups = {
        "g1": GroupRun(status="completed", nodes=2, completed_nodes=2, worker="w1"),
        "g2": GroupRun(status="running", nodes=2, completed_nodes=1, current_node="fit_b"),
        "g3": GroupRun(status="running", nodes=2, completed_nodes=0, current_node="prep_c"),
        "g4": GroupRun(nodes=1),
    }
    running = job.model_copy(update={"status": JobStatus.RUNNING, "fan_out": PLAN,
                                     "groups": groups})  # fmt: skip
    stored = from_item(to_item(running))  # the groups are a native map in the item
    assert stored.groups == groups and stored.fan_out == PLAN
    assert stored.progress is not None
    assert (stored.progress.completed_nodes, stored.progress.total_nodes) == (3, 7)
    assert stored.progress.current_node == "fit_b, prep_c"
    assert to_item(running)["groups"]["M"]["g2"]["M"]["status"] == {"S": "running"}


def test_kedro_jobs_status_shows_each_group() -> None:
    from rich.console import Console

    from kedro_jobs.cli.render import show_job

    job = Job.new(pipeline_name="branches", parameters={}, options={}, user_id="u")
    groups = {
        "g10": GroupRun(status="pending", nodes=1),
        "g2": GroupRun(status="running", nodes=2, completed_nodes=1, current_node="fit_b",
                       worker="req-2/ab12"),
    }  # fmt: skip
    record = job.model_copy(update={"status": JobStatus.RUNNING, "groups": groups})
    console = Console(record=True, width=120)
    show_job(console, record.model_dump(mode="json"))
    lines = console.export_text().splitlines()
    g2 = next(line for line in lines if " g2 " in line)
    assert g2.split() == ["g2", "running", "1/2", "fit_b", "req-2"]  # no claim token
    assert lines.index(g2) < next(i for i, line in enumerate(lines) if " g10 " in line)
