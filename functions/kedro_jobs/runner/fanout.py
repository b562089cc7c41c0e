"""The runner's side of a fanned-out job: its plan, one group's run, the commit at the end.

Called through :class:`~kedro_jobs.runner.runner.KedroRunner`; the isolation (fork or
inline), the deadline, progress and cancel at node boundaries are those of any job.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from kedro_jobs.runner import handover
from kedro_jobs.runner.control import RunControl
from kedro_jobs.runner.data import DataPlan, unique_version
from kedro_jobs.runner.ending import settle
from kedro_jobs.runner.groups import GroupPlan, plan_groups
from kedro_jobs.runner.isolation import Ended, run_inline
from kedro_jobs.runner.log import log_line
from kedro_jobs.runner.project import ensure_configured
from kedro_jobs.runner.types import ProgressSink, RunOutcome, RunRequest

if TYPE_CHECKING:
    from kedro_jobs.runner.runner import KedroRunner


def plan(runner: KedroRunner, request: RunRequest) -> dict[str, Any] | None:
    """The job's group plan (with the save version every group uses), or None when it does
    not fan out: fewer than two groups could run at once, or its pipeline is unknown."""
    pipeline = runner._pipelines.get(request.pipeline_name)
    if pipeline is None:
        return None
    filters: dict[str, Any] = request.options.filters()
    if "namespaces" in filters:  # Pipeline.filter's name for it
        filters["node_namespaces"] = filters.pop("namespaces")
    try:
        pipeline = pipeline.filter(**filters) if filters else pipeline
    except Exception:  # bad filters: the one-worker run reports them as the job's error
        return None
    found = plan_groups(pipeline)
    if found is None or not found.fans_out:
        return None
    return {**found.to_dict(), "save_version": unique_version(request.job_id)}


def _work(runner: KedroRunner, job_plan: dict[str, Any], group_id: str) -> handover.GroupWork:
    groups = GroupPlan.from_dict(job_plan)
    group = groups.group(group_id)
    pipeline = runner._pipelines[job_plan["pipeline_name"]]
    by_name = {node.name: node for node in pipeline.nodes}
    mine = set(group.nodes)
    produced = {ds for name in mine for ds in by_name[name].outputs}
    read_elsewhere = {
        ds for g in groups.groups if g.id != group_id for n in g.nodes for ds in by_name[n].inputs
    }
    results = set(groups.free_outputs)
    return handover.GroupWork(
        group_id=group_id,
        nodes=list(group.nodes),
        upstream=list(group.depends_on),
        exports=produced & (read_elsewhere | results),
        results=results,
        root=runner.data_root or str(runner.project_path),
        signer=runner.signer,
        owners=dict(job_plan.get("reused") or {}),
    )


def _plan(runner: KedroRunner, job_id: str, save_version: str) -> DataPlan:
    return DataPlan.for_job(
        runner.project_path, runner.data_root, runner.staging_root, job_id, save_version
    )


def run_group(
    runner: KedroRunner,
    request: RunRequest,
    job_plan: dict[str, Any],
    group_id: str,
    progress: ProgressSink,
    *,
    deadline: float,
    may_move: bool = False,
) -> RunOutcome:
    """Run one group's nodes and hand its data over; status "completed" when it did (its
    results and outputs are the commit's, not this outcome's). Past ``deadline`` the group
    fails, saying so; with ``may_move`` (a task backend takes long groups) it is "timed_out"
    instead, and the consumer moves it to a task."""
    control = RunControl(progress, deadline)
    ensure_configured(runner.package_name)
    from kedro_jobs.runner.session import prepare

    # Before the fork, as for a whole run, so the group's child has it; if it fails, the
    # group's run meets the error again and fails saying why.
    with contextlib.suppress(Exception):
        prepare(runner.project_path, request)
    work = _work(runner, {**job_plan, "pipeline_name": request.pipeline_name}, group_id)
    data = _plan(runner, request.job_id, job_plan["save_version"])
    task = partial(handover.execute_group, runner.project_path, request, plan=data, work=work)
    try:
        if runner.isolation == "inline":
            ended = run_inline(task, control)
        else:
            from kedro_jobs.runner.forked import run_forked

            ended = run_forked(task, control)
    finally:
        data.discard()
    outcome = _outcome(ended, control, [], None)
    if outcome.status == "timed_out":
        return _too_long(outcome, group_id, may_move=may_move)
    return outcome


def _too_long(outcome: RunOutcome, group_id: str, *, may_move: bool = False) -> RunOutcome:
    """A group that outlived its invocation: moved to a task where ``may_move``, else it
    fails the job, saying so and what to do. Either way the node it was in is noted as having
    taken at least its time so far, so the pipeline's next job plans the group for a task
    (core.fanout.fit_plan), or, where no task backend is offered, runs on one worker, which
    goes on in segments."""
    durations = dict(outcome.node_durations)
    running = outcome.progress.current
    if running and running not in durations:
        durations[running] = max(0.0, outcome.duration - sum(durations.values()))
    if may_move:
        return replace(outcome, node_durations=durations)
    message = (
        f"Group {group_id} did not finish within one invocation ({outcome.error_message}). "
        "A fanned-out job's group is not continued in segments: the pipeline's next job runs "
        'on one worker, or submit this one again with "fan_out": false'
    )
    return replace(outcome, status="failed", error_message=message, node_durations=durations)


def commit(runner: KedroRunner, job_id: str, job_plan: dict[str, Any]) -> RunOutcome:
    """Every group has run: publish their staged files once and gather the job's results.
    Any error fails the job. The hand-overs stay until ``discard`` (after the outcome is
    recorded): a commit delivered again after a crash publishes the same files again."""
    started = time.monotonic()
    root = runner.data_root or str(runner.project_path)
    data = _plan(runner, job_id, job_plan["save_version"])
    group_ids = [g["id"] for g in job_plan["groups"]]
    total = int(job_plan["total_nodes"])
    commit_error, log = None, ""
    owners = dict(job_plan.get("reused") or {})  # a rerun's reused groups: kept elsewhere
    try:
        outputs, results = handover.commit(root, job_id, group_ids, data, runner.signer, owners)
    except Exception as error:
        commit_error = f"Outputs could not be committed to {data.data_root}: {error!r}"
        outputs, results, log = [], None, log_line("ERROR", "kedro_jobs", commit_error)
    finally:
        data.discard()
    settled = settle("completed", None, commit_error=commit_error)
    ended = Ended(settled.status, settled.error, results=results, log=log)
    control = RunControl(lambda *_: False, float("inf"))
    control.started = started
    control.note(total, total, None)
    return _outcome(ended, control, outputs, results=ended.results)


def discard(
    runner: KedroRunner, job_id: str, group_id: str | None = None, *, keep: Collection[str] = ()
) -> None:
    handover.discard(runner.data_root or str(runner.project_path), job_id, group_id, keep=keep)


def _outcome(
    ended: Ended,
    control: RunControl,
    outputs: list[dict[str, Any]],
    results: dict[str, Any] | None,
) -> RunOutcome:
    return RunOutcome(
        status=ended.status,
        results=results if ended.status == "completed" else None,
        error_message=ended.error,
        log=ended.log,
        duration=time.monotonic() - control.started,
        progress=control.final_progress(ended.status),
        outputs=outputs,
        node_durations=dict(control.durations),
    )
