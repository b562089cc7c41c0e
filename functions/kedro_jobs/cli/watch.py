"""Following a job: a bar per node until it ends, then one line with its outcome (and the
exit code that goes with it)."""

from __future__ import annotations

import json
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.text import Text

from kedro_jobs.cli import groups as fan_out
from kedro_jobs.cli.client import Api
from kedro_jobs.cli.exit_codes import EXIT_JOB, EXIT_OK
from kedro_jobs.cli.nodes import TERMINAL, node_states, run_nodes
from kedro_jobs.cli.render import STATUS_STYLE, duration, print_text, styled_status
from kedro_jobs.cli.timeline import eta_text, node_times

_STATE_STYLE = {
    "done": "green",
    "running": "blue",
    "failed": "red",
    "skipped": "dim",
    "pending": "dim",
}


def watch(api: Api, job: dict[str, Any], console: Console, interval: float) -> int:
    """A bar per node until the job ends; returns the exit code of its outcome."""
    info = api.pipeline(job["pipeline_name"])
    names = (
        [str(n["name"]) for n in run_nodes(info["nodes"], job.get("options") or {})] if info else []
    )
    width = max((len(n) for n in names), default=0)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(bar_width=30),
        TextColumn("{task.fields[state]}"),
    )
    with Progress(*columns, console=console, transient=False) as bars:
        # Descriptions and states are rich markup: names from the API are escaped.
        overall = bars.add_task(
            escape(job["pipeline_name"].ljust(width)), total=None, state=job["status"]
        )
        tasks: dict[str, TaskID] = {
            name: bars.add_task(escape(f"  {name}".ljust(width)), total=1, state="pending")
            for name in names
        }
        # A fanned-out job's groups: a bar each, added once the plan is on the record.
        lanes: dict[str, TaskID] = {}
        while True:
            _update_bars(bars, overall, tasks, job)
            _update_lanes(bars, lanes, job, width)
            if job["status"] in TERMINAL:
                break
            time.sleep(interval)
            job = api.job(job["id"])
    return _outcome(console, job)


def _update_bars(
    bars: Progress, overall: TaskID, tasks: dict[str, TaskID], job: dict[str, Any]
) -> None:
    progress = job.get("progress") or {}
    total = progress.get("total_nodes") or len(tasks) or None
    done = total if job["status"] == "completed" else progress.get("completed_nodes", 0)
    state = job["status"]
    if job["status"] == "running" and progress.get("current_node"):
        state = escape(f"running {progress['current_node']}")
    if eta_text(job):
        state += escape(f", {eta_text(job)}")
    bars.update(overall, total=total, completed=done or 0, state=state)
    times = node_times(job)  # each node's duration, the running one's time so far
    states = (
        fan_out.node_states(job, list(tasks))
        if job.get("groups") and job.get("fan_out")
        else node_states(job, list(tasks))
    )
    for name, node_state in states:
        took = f" {escape(times[name])}" if name in times else ""
        bars.update(
            tasks[name],
            # No total: rich draws a moving bar, for the node that runs now.
            total=None if node_state == "running" else 1,
            completed=1 if node_state == "done" else 0,
            state=f"[{_STATE_STYLE[node_state]}]{node_state}[/]{took}",
        )


def _update_lanes(
    bars: Progress, lanes: dict[str, TaskID], job: dict[str, Any], width: int
) -> None:
    """A bar per group of a fanned-out job: its status, nodes done, node running, worker."""
    for group_id, group in fan_out.groups(job):
        if group_id not in lanes:
            title = f"  group {fan_out.label(job, group_id)}".ljust(width)
            lanes[group_id] = bars.add_task(escape(title), total=1, state="pending")
        status = str(group.get("status") or "pending")
        took = fan_out.seconds(group)
        text = f"[{STATUS_STYLE.get(status, 'dim')}]{status}[/] {escape(fan_out.doing(group))}"
        if fan_out.worker(group):
            text += f" on {escape(fan_out.worker(group))}"
        if took is not None:
            text += f" {duration(took)}"
        bars.update(
            lanes[group_id],
            total=max(1, int(group.get("nodes") or 0)),
            completed=int(group.get("completed_nodes") or 0),
            state=text,
        )


def _outcome(console: Console, job: dict[str, Any]) -> int:
    """The last line of a watch, and its exit code: 0 only for a completed job."""
    status = job["status"]
    line = Text.assemble(("Job ", ""), (job["id"], "bold"), " ", styled_status(status))
    if job.get("execution_time") is not None:
        line.append(f" in {duration(job['execution_time'])}")
    console.print(line)
    if job.get("error_message"):
        print_text(console, job["error_message"], style="red")
    if status == "completed" and job.get("results") is not None:
        print_text(console, json.dumps(job["results"], indent=2))
    return EXIT_OK if status == "completed" else EXIT_JOB
