"""Fan-out's pure parts: the opt-out on submit, the state machine's messages, whether a plan
is worth its workers, what an execution costs, and a fanned-out record's progress."""

from __future__ import annotations

import json
from typing import Any

from kedro_jobs.cli.commands import request_body
from kedro_jobs.cli.main import build_parser
from kedro_jobs.core.fanout import (
    fit_plan,
    parse_task,
    transitions,
    unfinished,
    worth_fanning_out,
)
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
    quick = dict.fromkeys(["prep_a", "prep_b", "prep_c", "fit_a", "fit_b", "fit_c", "report"], 0.5)
    assert fit_plan(PLAN, quick, 5.0) is None
    assert not worth_fanning_out(PLAN, quick, 5.0)
    slow = {**quick, "fit_a": 20.0, "fit_b": 20.0}
    fitted = fit_plan(PLAN, slow, 5.0)  # two groups of one level are worth a worker each
    assert fitted is not None
    # Branch c (1 s) is not worth a worker: it runs with the shortest other group of its level.
    assert [g["nodes"] for g in fitted["groups"]] == [
        ["prep_a", "fit_a", "prep_c", "fit_c"],
        ["prep_b", "fit_b"],
        ["report"],
    ]
    assert fitted["levels"] == [["g1", "g2"], ["g3"]]
    assert fitted["groups"][2]["depends_on"] == ["g1", "g2"]  # the packs, renumbered
    assert fitted["groups"][0]["name"] == "a+c"
    assert fit_plan(PLAN, {}, 0.0) == PLAN  # 0: whenever the shape allows


def test_a_pipeline_s_first_run_fans_out_by_namespace_not_by_branch() -> None:
    # Never timed: the DAG's branches run on one worker (which times them)...
    assert fit_plan(PLAN, {}, 5.0) is None
    # ...a pipeline's namespaces are the user's own independent units: they fan out.
    namespaced = {**PLAN, "grouped_by": "namespace"}
    assert fit_plan(namespaced, {}, 5.0) == namespaced
    # Once timed, namespaces too are packed when small.
    quick = dict.fromkeys(["prep_a", "prep_b", "prep_c", "fit_a", "fit_b", "fit_c", "report"], 0.1)
    assert fit_plan(namespaced, quick, 5.0) is None
    # A node new to a timed namespace leaves its group untimed: it keeps its worker.
    partly = {k: v for k, v in quick.items() if k != "fit_c"}
    fitted = fit_plan(namespaced, {**partly, "fit_a": 3.0, "fit_b": 3.0}, 5.0)
    assert fitted is not None
    assert [g["name"] for g in fitted["groups"]] == ["a+b", "c", "report"]


def test_small_groups_of_one_level_are_packed_until_each_is_worth_a_worker() -> None:
    groups = [{"id": f"g{i}", "name": f"n{i}", "nodes": [f"n{i}"], "depends_on": []}
              for i in range(1, 8)]  # fmt: skip
    plan = {**PLAN, "groups": groups, "levels": [[g["id"] for g in groups]], "total_nodes": 7}
    seconds = {**{f"n{i}": 2.0 for i in range(1, 7)}, "n7": 1.0}
    fitted = fit_plan(plan, seconds, 5.0)
    assert fitted is not None
    # 2+2+2 = 6 s twice, and 1 s left over: it joins the shortest pack.
    assert [g["nodes"] for g in fitted["groups"]] == [["n1", "n2", "n3", "n7"], ["n4", "n5", "n6"]]
    assert fitted["levels"] == [["g1", "g2"]]


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


def test_a_group_known_to_need_an_invocation_or_more_keeps_the_job_on_one_worker() -> None:
    """Without a task backend for long groups (no Fargate offered), a job with a group known
    to take (nearly) an invocation or more runs on one worker, which goes on in segments."""
    namespaced = {**PLAN, "grouped_by": "namespace"}
    long_b = {"prep_b": 1.0, "fit_b": 700.0}
    assert fit_plan(namespaced, long_b, 5.0, invocation_seconds=890.0) is not None
    assert fit_plan(namespaced, {**long_b, "fit_b": 850.0}, 5.0, invocation_seconds=890.0) is None
    assert fit_plan(PLAN, {}, 0.0, invocation_seconds=890.0) == PLAN  # nothing known: fans out


def test_where_fargate_is_offered_a_long_group_runs_there_and_the_job_still_fans_out() -> None:
    namespaced = {**PLAN, "grouped_by": "namespace"}
    long_b = {"prep_b": 1.0, "fit_b": 850.0}
    fitted = fit_plan(namespaced, long_b, 5.0, invocation_seconds=890.0, long_groups="fargate")
    assert fitted is not None and fitted["levels"] == PLAN["levels"]
    assert {g["id"]: g.get("compute") for g in fitted["groups"]} == {
        "g1": None,
        "g2": "fargate",
        "g3": None,
        "g4": None,
    }
    # A group of one level known to be short stays on Lambda; nothing long: no compute noted.
    assert all(
        "compute" not in g
        for g in fit_plan(namespaced, {}, 5.0, invocation_seconds=890.0,
                          long_groups="fargate")["groups"]  # type: ignore[index]
    )  # fmt: skip
    # Only the shape decides whether it fans out: one group per level stays on one worker.
    linear = {**PLAN, "groups": PLAN["groups"][:1], "levels": [["g1"]]}
    assert fit_plan(linear, {"fit_a": 5000.0}, 0.0, invocation_seconds=890.0,
                    long_groups="fargate") is None  # fmt: skip


def test_a_fan_out_that_ended_early_says_what_step_functions_said_and_what_did_not_run() -> None:
    plan = {"groups": [{"id": "g1", "name": "a"}, {"id": "g2", "name": "b"},
                       {"id": "g3", "name": "report"}]}  # fmt: skip
    groups = {"g1": GroupRun(status="completed"), "g2": GroupRun(status="running")}
    said = unfinished({"Error": "States.HeartbeatTimeout", "Cause": ""}, groups, plan)
    assert said.startswith(
        "The job's fan-out execution ended before every group had run (Step Functions: "
        "States.HeartbeatTimeout); not run to their end: g2 (b), g3 (report). "
    )
    assert said.endswith(
        "Nothing was committed: rerun it from failure (the groups that completed are kept) "
        "or submit it again"
    )
    bare = unfinished(None, {g: GroupRun(status="completed") for g in ("g1", "g2", "g3")}, plan)
    assert bare.startswith("The job's fan-out execution ended before every group had run. ")


def test_a_discard_message_carries_what_ended_the_groups() -> None:
    body = {"fanout": "discard", "job_id": "0" * 8 + "-0000-0000-0000-" + "0" * 12, "token": "t",
            "failure": {"Error": "States.Timeout", "Cause": "x"}}  # fmt: skip
    task = parse_task(json.dumps(body))
    assert task is not None and task.failure == {"Error": "States.Timeout", "Cause": "x"}
