"""How a job looks in a terminal: its status in colour, times, durations, sizes, progress,
and the panel `kedro-jobs status` prints. User data is printed as it is, never read as rich
markup."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from kedro_jobs.cli.nodes import TERMINAL
from kedro_jobs.names import DEFAULT_COMPUTE

STATUS_STYLE = {
    "pending": "dim",
    "running": "blue",
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
}


def styled_status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def moment(value: str | None) -> datetime | None:
    """A record's time (ISO 8601), or None when it has none or it is not one."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def local_time(value: str | None, *, zone: bool = False) -> str:
    """The terminal's local time; with ``zone``, naming it ("... CET")."""
    at = moment(value)
    if at is None:
        return value or ""
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S" + (" %Z" if zone else ""))


def duration(value: float | None) -> str:
    if value is None:
        return ""
    if value < 60:
        return f"{value:.2f} s"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes}m {seconds:02d}s"


def progress_text(job: dict[str, Any]) -> str:
    progress = job.get("progress") or {}
    total = progress.get("total_nodes") or 0
    if job.get("status") == "completed":
        return f"{total}/{total}" if total else "done"
    if not total:
        return ""
    text = f"{progress.get('completed_nodes', 0)}/{total}"
    if job.get("status") == "running" and progress.get("current_node"):
        text += f" {progress['current_node']}"
    return text


def size_text(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""


def print_json(console: Console, value: Any) -> None:
    console.print_json(json.dumps(value))


def print_text(console: Console, value: Any, style: str = "") -> None:
    """User data (errors, logs, names) printed as it is: never read as rich markup."""
    console.print(Text(str(value), style=style), soft_wrap=True)


def show_job(console: Console, job: dict[str, Any]) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    grid.add_row("job", Text(job["id"]))
    grid.add_row("status", styled_status(job["status"]))
    grid.add_row("pipeline", Text(job["pipeline_name"]))
    for label, key in (("created", "created_at"), ("started", "started_at")):
        if job.get(key):
            grid.add_row(label, local_time(job[key], zone=True))
    if job.get("completed_at"):
        grid.add_row(
            "finished",
            f"{local_time(job['completed_at'], zone=True)} ({duration(job['execution_time'])})",
        )
    if progress_text(job):
        grid.add_row("progress", Text(progress_text(job)))
    if job.get("parameters"):
        grid.add_row("parameters", Text(json.dumps(job["parameters"])))
    if job.get("options"):
        grid.add_row("options", Text(json.dumps(job["options"])))
    if job.get("retry_of"):
        grid.add_row("retry of", Text(job["retry_of"]))
    rerun = _rerun_text(job)  # rerun from failure (docs/long-jobs.md)
    if rerun:
        grid.add_row(*rerun)
    segments = job.get("segments") or []
    compute = job.get("compute") or DEFAULT_COMPUTE
    if len(segments) > 1 or compute != DEFAULT_COMPUTE:  # where it ran, when not just Lambda
        grid.add_row("ran on", Text(_segments(compute, segments)))
    # A fanned-out job's groups side by side (cli/groups.py).
    from kedro_jobs.cli.groups import groups_table

    groups = groups_table(job)
    if groups is not None:
        grid.add_row("groups", groups)
    if job.get("cancel_requested") and job["status"] not in TERMINAL:
        grid.add_row("cancel", "requested: stops at the next node")
    # The node timeline (cli/timeline.py), the ETA of a running job.
    from kedro_jobs.cli.timeline import eta_text, timeline_table

    if eta_text(job):
        grid.add_row("eta", Text(eta_text(job)))
    timeline = timeline_table(job)
    if timeline is not None:
        grid.add_row("nodes", timeline)
    if job.get("error_message"):
        grid.add_row("error", Text(job["error_message"], style="red"))
    if job.get("results") is not None:
        grid.add_row("results", Text(json.dumps(job["results"], indent=2)))
    elif job.get("results_location"):
        grid.add_row("results", Text(job["results_location"]))
    console.print(grid)


def _segments(compute: str, segments: list[dict[str, Any]]) -> str:
    """ "lambda, 3 segments (step1 | step2 | step3)": where the run went, node by node."""
    if not segments:
        return compute
    nodes = " | ".join(", ".join(s.get("nodes") or []) or "-" for s in segments)
    return f"{compute}, {len(segments)} segment(s) ({nodes})"


def _rerun_text(job: dict[str, Any]) -> tuple[str, Text] | None:
    """A rerun's reused nodes, or how to rerun a stopped job that kept its completed nodes'
    outputs (and until when)."""
    if job.get("reused_from"):
        reused = [n["name"] for n in job.get("nodes") or [] if n.get("status") == "reused"]
        which = f": {', '.join(reused)}" if reused else ""
        return "reused", Text(f"from job {job['reused_from']}{which} (not run again)")
    if job.get("reusable_until") and job["status"] in ("failed", "cancelled"):
        until = local_time(job["reusable_until"], zone=True)
        return "rerun", Text(f"kedro-jobs retry {job['id'][:8]} --from-failure (until {until})")
    return None
