"""A job's node timeline in a terminal: each node's duration (the running one's time so far),
where it ran, and the ETA of a running job (from the record's ``nodes`` and ``eta``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from kedro_jobs.cli.render import duration, local_time, moment

_STYLE = {"completed": "green", "reused": "green", "running": "blue", "failed": "red"}


def node_seconds(node: dict[str, Any], now: datetime | None = None) -> float | None:
    """A finished node's duration; a running one's time so far."""
    if node.get("duration") is not None:
        return float(node["duration"])
    started = moment(node.get("started_at"))
    if node.get("status") == "running" and started is not None:
        return max(0.0, ((now or datetime.now(UTC)) - started).total_seconds())
    return None


def node_times(job: dict[str, Any], now: datetime | None = None) -> dict[str, str]:
    """By node name: its duration as text ("1.20 s", "running 3.40 s")."""
    times: dict[str, str] = {}
    for node in job.get("nodes") or []:
        seconds = node_seconds(node, now)
        if seconds is None:
            continue
        text = duration(seconds)
        times[str(node["name"])] = f"{text} so far" if node.get("status") == "running" else text
    return times


def eta_text(job: dict[str, Any], now: datetime | None = None) -> str:
    """ "about 12.00 s left (14:03:07)" for a running job with an ETA, else ""."""
    eta = moment(job.get("eta"))
    if job.get("status") != "running" or eta is None:
        return ""
    left = max(0.0, (eta - (now or datetime.now(UTC))).total_seconds())
    return f"about {duration(left)} left ({local_time(job['eta'])})"


def timeline_table(job: dict[str, Any], now: datetime | None = None) -> Table | None:
    """One row per node of the record's timeline, or None if it has none."""
    nodes = job.get("nodes") or []
    if not nodes:
        return None
    table = Table(box=None, header_style="dim", pad_edge=False)
    table.add_column("node", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("took", no_wrap=True, justify="right")
    table.add_column("ran on", no_wrap=True)
    if job.get("nodes_omitted"):
        table.add_row(Text(f"({job['nodes_omitted']} earlier nodes)", style="dim"), "", "", "")
    for node in nodes:
        status = str(node.get("status") or "")
        seconds = node_seconds(node, now)
        where = f"{node.get('compute') or ''} #{node['segment']}" if node.get("segment") else ""
        if node.get("group"):  # a fanned-out job's node: its group and the group's worker
            worker = str(node.get("worker") or "").split("/")[0]
            where = f"{node['group']} {worker}".strip()
        table.add_row(
            Text(str(node["name"])),
            Text(status, style=_STYLE.get(status, "dim")),
            duration(seconds),
            Text(where, style="dim"),
        )
    return table
