"""A fanned-out job's groups in a terminal (docs/fan-out.md): one row per group, side by side
on a job's page of `kedro-jobs status` and as a bar each under `--watch`, with its status,
nodes done, the node it runs now, the worker it runs on, and its time. From the record's
``groups`` (each group's run) and ``fan_out`` (the plan: each group's name and nodes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from kedro_jobs.cli.render import STATUS_STYLE, duration, local_time, moment


def plan_groups(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The plan's groups by id (name, nodes, depends_on); empty for a one-worker job."""
    return {str(g["id"]): g for g in (job.get("fan_out") or {}).get("groups") or []}


def groups(job: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(group id, its run), in the order the levels run them (g1, g2, ..., g10)."""
    runs = job.get("groups") or {}
    return sorted(runs.items(), key=lambda g: (len(g[0]), g[0]))


def label(job: dict[str, Any], group_id: str) -> str:
    """ "g2 b": the group's id and its name (its namespace, or its branch's first node)."""
    name = plan_groups(job).get(group_id, {}).get("name")
    return f"{group_id} {name}" if name else group_id


def seconds(group: dict[str, Any], now: datetime | None = None) -> float | None:
    """An ended group's time; a running one's time so far."""
    started = moment(group.get("started_at"))
    if started is None:
        return None
    ended = moment(group.get("ended_at"))
    if ended is None:
        if group.get("status") != "running":
            return None
        ended = now or datetime.now(UTC)
    return max(0.0, (ended - started).total_seconds())


def worker(group: dict[str, Any]) -> str:
    """The worker that runs it: the Lambda request id (or local name), or for a group run as
    a Fargate task, "fargate" and the task's id; without the claim's token."""
    name = str(group.get("worker") or "").rsplit("/", 1)[0]
    if name.startswith("arn:"):  # an ECS task ARN: its last part is the task's id
        name = name.rsplit("/", 1)[-1]
    compute = group.get("compute")
    return f"{compute} {name}" if name and compute and compute != "lambda" else name


def doing(group: dict[str, Any]) -> str:
    """ "1/2 fit_b": nodes done of the group's, and the node running now."""
    text = f"{group.get('completed_nodes', 0)}/{group.get('nodes', 0)}"
    if group.get("status") == "running" and group.get("current_node"):
        text += f" {group['current_node']}"
    return text


def node_states(job: dict[str, Any], names: list[str]) -> list[tuple[str, str]]:
    """Each run node's state in a fanned-out job, from its group's entry: a group runs its
    nodes in the plan's order, so its first ``completed_nodes`` are done."""
    by_node: dict[str, str] = {}
    runs = job.get("groups") or {}
    for group_id, group in plan_groups(job).items():
        run = runs.get(group_id) or {}
        status = run.get("status") or "pending"
        done = int(run.get("completed_nodes") or 0)
        for i, name in enumerate(group.get("nodes") or []):
            if status == "completed" or i < done:
                state = "done"
            elif status == "running":
                state = "running" if name == run.get("current_node") else "pending"
            elif status == "failed" and i == done:
                state = "failed"
            else:
                state = "pending" if status == "pending" else "skipped"
            by_node[str(name)] = state
    if job.get("status") in {"failed", "cancelled"}:  # a group never started did not run
        by_node = {k: "skipped" if v == "pending" else v for k, v in by_node.items()}
    if job.get("status") == "completed":
        return [(name, "done") for name in names]
    return [(name, by_node.get(name, "pending")) for name in names]


def groups_table(job: dict[str, Any], now: datetime | None = None) -> Table | None:
    """One row per group, or None for a job that did not fan out."""
    rows = groups(job)
    if not rows:
        return None
    table = Table(box=None, header_style="dim", pad_edge=False)
    table.add_column("group", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("nodes", overflow="fold")
    table.add_column("worker", overflow="fold")
    table.add_column("started", no_wrap=True)
    table.add_column("took", no_wrap=True, justify="right")
    for group_id, group in rows:
        status = str(group.get("status") or "pending")
        took = seconds(group, now)
        runs = int(group.get("runs") or 0)
        where = worker(group) + (f" (run {runs})" if runs > 1 else "")
        table.add_row(
            Text(label(job, group_id)),
            Text(status, style=STATUS_STYLE.get(status, "")),
            Text(doing(group)),
            Text(where, style="dim"),
            local_time(group.get("started_at"))[11:],
            f"{duration(took)} so far"
            if status == "running" and took is not None
            else duration(took),
        )
        if group.get("error"):
            table.add_row("", Text(str(group["error"]), style="red"), "", "", "", "")
    return table
