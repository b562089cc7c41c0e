"""`kedro-jobs`: submit, watch and manage jobs from a terminal.

Exit codes: 0 success (for a watched job: it completed), 1 the job failed or was cancelled,
2 a usage error, 3 the API refused the request or could not be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from kedro_jobs.cli.client import Api, ApiError
from kedro_jobs.cli.nodes import TERMINAL, node_states, run_nodes
from kedro_jobs.cli.params import (
    UsageError,
    merge,
    parse_list,
    parse_load_versions,
    parse_params,
)

DEFAULT_API = "http://127.0.0.1:8000"
EXIT_OK, EXIT_JOB, EXIT_USAGE, EXIT_API = 0, 1, 2, 3
STATUS_STYLE = {
    "pending": "dim",
    "running": "blue",
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
}
# `kedro run` flag -> the API's run option; all take comma-separated names.
LIST_OPTIONS = {
    "tags": "tags",
    "nodes": "node_names",
    "from_nodes": "from_nodes",
    "to_nodes": "to_nodes",
    "from_inputs": "from_inputs",
    "to_outputs": "to_outputs",
    "namespaces": "namespaces",
}

Command = Callable[[Api, argparse.Namespace, Console], int]


# --- Formatting ------------------------------------------------------------------------------


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def _time(value: str | None) -> str:
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 60:
        return f"{value:.2f} s"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes}m {seconds:02d}s"


def _progress(job: dict[str, Any]) -> str:
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


def _size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""


def _print_json(console: Console, value: Any) -> None:
    console.print_json(json.dumps(value))


def _text(console: Console, value: Any, style: str = "") -> None:
    """User data (errors, logs, names) printed as it is: never read as rich markup."""
    console.print(Text(str(value), style=style), soft_wrap=True)


def _show_job(console: Console, job: dict[str, Any]) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    grid.add_row("job", Text(job["id"]))
    grid.add_row("status", _status(job["status"]))
    grid.add_row("pipeline", Text(job["pipeline_name"]))
    for label, key in (("created", "created_at"), ("started", "started_at")):
        if job.get(key):
            grid.add_row(label, _time(job[key]))
    if job.get("completed_at"):
        grid.add_row(
            "finished", f"{_time(job['completed_at'])} ({_seconds(job['execution_time'])})"
        )
    if _progress(job):
        grid.add_row("progress", Text(_progress(job)))
    if job.get("parameters"):
        grid.add_row("parameters", Text(json.dumps(job["parameters"])))
    if job.get("options"):
        grid.add_row("options", Text(json.dumps(job["options"])))
    if job.get("retry_of"):
        grid.add_row("retry of", Text(job["retry_of"]))
    segments = job.get("segments") or []
    if len(segments) > 1 or job.get("compute") == "fargate":
        grid.add_row("ran on", Text(_segments(job.get("compute") or "lambda", segments)))
    if job.get("cancel_requested") and job["status"] not in TERMINAL:
        grid.add_row("cancel", "requested: stops at the next node")
    if job.get("error_message"):
        grid.add_row("error", Text(job["error_message"], style="red"))
    if job.get("results") is not None:
        grid.add_row("results", Text(json.dumps(job["results"], indent=2)))
    elif job.get("results_location"):
        grid.add_row("results", Text(job["results_location"]))
    console.print(grid)


def _outcome(console: Console, job: dict[str, Any]) -> int:
    """The last line of a watch, and its exit code: 0 only for a completed job."""
    status = job["status"]
    line = Text.assemble(("Job ", ""), (job["id"], "bold"), " ", _status(status))
    if job.get("execution_time") is not None:
        line.append(f" in {_seconds(job['execution_time'])}")
    console.print(line)
    if job.get("error_message"):
        _text(console, job["error_message"], style="red")
    if status == "completed" and job.get("results") is not None:
        _text(console, json.dumps(job["results"], indent=2))
    return EXIT_OK if status == "completed" else EXIT_JOB


# --- Watching --------------------------------------------------------------------------------

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
        while True:
            _update_bars(bars, overall, tasks, job)
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
    bars.update(overall, total=total, completed=done or 0, state=state)
    for name, node_state in node_states(job, list(tasks)):
        bars.update(
            tasks[name],
            # No total: rich draws a moving bar, for the node that runs now.
            total=None if node_state == "running" else 1,
            completed=1 if node_state == "done" else 0,
            state=f"[{_STATE_STYLE[node_state]}]{node_state}[/]",
        )


# --- Commands --------------------------------------------------------------------------------


def _segments(compute: str, segments: list[dict[str, Any]]) -> str:
    """ "lambda, 3 segments (step1 | step2 | step3)": where the run went, node by node."""
    if not segments:
        return compute
    nodes = " | ".join(", ".join(s.get("nodes") or []) or "-" for s in segments)
    return f"{compute}, {len(segments)} segment(s) ({nodes})"


def _request_body(args: argparse.Namespace) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for text in args.params or []:
        parameters = merge(parameters, parse_params(text))
    body: dict[str, Any] = {"pipeline_name": args.pipeline, "parameters": parameters}
    for flag, option in LIST_OPTIONS.items():
        values = [item for text in getattr(args, flag) or [] for item in parse_list(text)]
        if values:
            body[option] = values
    versions: dict[str, str] = {}
    for text in args.load_versions or []:
        versions.update(parse_load_versions(text))
    if versions:
        body["load_versions"] = versions
    if args.env:
        body["env"] = args.env
    if args.compute:
        body["compute"] = args.compute
    if args.max_job_seconds:
        body["max_job_seconds"] = args.max_job_seconds
    return body


def cmd_submit(api: Api, args: argparse.Namespace, console: Console) -> int:
    job = api.submit(_request_body(args), idempotency_key=args.idempotency_key)
    if not args.watch:
        if args.json:
            _print_json(console, job)
        else:
            console.print(
                Text.assemble("Submitted ", (job["id"], "bold"), " ", _status(job["status"]))
            )
        return EXIT_OK
    console.print(Text.assemble("Submitted ", (job["id"], "bold")))
    return watch(api, job, console, args.interval)


def cmd_status(api: Api, args: argparse.Namespace, console: Console) -> int:
    job = api.job(args.job_id)
    if args.json:
        _print_json(console, job)
    else:
        _show_job(console, job)
    return EXIT_OK


def cmd_watch(api: Api, args: argparse.Namespace, console: Console) -> int:
    return watch(api, api.job(args.job_id), console, args.interval)


def cmd_list(api: Api, args: argparse.Namespace, console: Console) -> int:
    page = api.jobs(
        limit=args.limit, status=args.status, pipeline_name=args.pipeline, cursor=args.cursor
    )
    if args.json:
        _print_json(console, page)
        return EXIT_OK
    table = Table(box=None, header_style="dim")
    # Ids are meant to be copied: never cut short.
    table.add_column("job", no_wrap=True, min_width=36)
    table.add_column("status", no_wrap=True, min_width=9)
    table.add_column("pipeline", no_wrap=True)
    table.add_column("created", no_wrap=True, min_width=19)
    table.add_column("duration", no_wrap=True)
    table.add_column("progress", overflow="fold")
    for job in page["jobs"]:
        table.add_row(
            Text(job["id"]),
            _status(job["status"]),
            Text(job["pipeline_name"]),
            _time(job.get("created_at")),
            _seconds(job.get("execution_time")),
            Text(_progress(job)),
        )
    console.print(table if page["jobs"] else Text("No jobs.", style="dim"))
    if page.get("next_cursor"):
        _text(console, f"More: kedro-jobs list --cursor {page['next_cursor']}", style="dim")
    return EXIT_OK


def cmd_logs(api: Api, args: argparse.Namespace, console: Console) -> int:
    shown = ""
    while True:
        # Read the job first: a log read after the job ended is its whole log.
        job = api.job(args.job_id) if args.follow else None
        text = api.logs(args.job_id) or ""
        # The log is rewritten whole as it grows: print only what is new.
        new = text[len(shown) :] if text.startswith(shown) else text
        if new:
            sys.stdout.write(new)
            sys.stdout.flush()
            shown = text
        if job is None:
            if not text:
                sys.stderr.write("No log yet.\n")
            return EXIT_OK
        if job["status"] in TERMINAL:
            return EXIT_OK
        time.sleep(args.interval)


def cmd_cancel(api: Api, args: argparse.Namespace, console: Console) -> int:
    job = api.cancel(args.job_id)
    if job["status"] == "cancelled":
        console.print(Text.assemble("Job ", (job["id"], "bold"), " ", _status("cancelled")))
    else:
        console.print(
            Text.assemble("Cancel requested: job ", (job["id"], "bold"), " stops at the next node")
        )
    return EXIT_OK


def cmd_retry(api: Api, args: argparse.Namespace, console: Console) -> int:
    job = api.retry(args.job_id)
    console.print(Text.assemble("Retrying as ", (job["id"], "bold"), " ", _status(job["status"])))
    return watch(api, job, console, args.interval) if args.watch else EXIT_OK


def _file_name(output: dict[str, Any]) -> str:
    """The committed file's own name (its URI's last part), else the dataset's; never a path."""
    candidate = PurePosixPath(urlparse(str(output.get("uri") or "")).path).name
    name = candidate or str(output["name"])
    return name.replace("\\", "_").lstrip(".") or "output"


def cmd_outputs(api: Api, args: argparse.Namespace, console: Console) -> int:
    job = api.job(args.job_id)
    outputs = api.outputs(args.job_id)
    linked = outputs is not None
    if outputs is None:
        outputs = job.get("outputs") or []
    if args.json:
        _print_json(console, outputs)
    elif outputs:
        table = Table(box=None, header_style="dim")
        for column in ("dataset", "type", "version", "size", "uri"):
            table.add_column(column)
        for o in outputs:
            table.add_row(
                Text(str(o["name"])),
                Text(str(o.get("type") or "")),
                Text(str(o.get("version") or "")),
                _size(o.get("size")),
                Text(str(o.get("uri") or "")),
            )
        console.print(table)
    else:
        console.print(Text(f"Job {job['id']} saved no datasets ({job['status']}).", style="dim"))
    if args.download is None:
        return EXIT_OK
    if not linked:
        raise ApiError(404, "this API has no outputs route: nothing to download from")
    target = Path(args.download)
    target.mkdir(parents=True, exist_ok=True)
    for output in outputs:
        if not output.get("url"):
            continue
        path = target / _file_name(output)
        with api.download(str(output["url"])) as response, path.open("wb") as handle:
            for chunk in response.iter_bytes():
                handle.write(chunk)
        console.print(Text.assemble("Saved ", (str(output["name"]), "bold"), f" to {path}"))
    return EXIT_OK


# --- Arguments -------------------------------------------------------------------------------


def _connection(parser: argparse.ArgumentParser, *, default: Any) -> None:
    parser.add_argument(
        "--api",
        default=default,
        help=f"the API's URL (env KEDRO_JOBS_API, default {DEFAULT_API})",
    )
    parser.add_argument(
        "--token",
        default=default,
        help="a bearer token for the JWT authorizer (env KEDRO_JOBS_TOKEN)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kedro-jobs",
        description="Submit and follow Kedro pipeline runs on a kedro-jobs API.",
    )
    _connection(parser, default=None)
    # The same options after the command name too; there they win only when given.
    common = argparse.ArgumentParser(add_help=False)
    _connection(common, default=argparse.SUPPRESS)
    common.add_argument(
        "--interval", type=float, default=1.0, help="seconds between polls (default 1)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Command, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(func=func)
        return sub

    submit = command("submit", cmd_submit, "submit a pipeline run (kedro run's options)")
    submit.add_argument("pipeline", metavar="PIPELINE")
    submit.add_argument(
        "--params",
        action="append",
        metavar="KEY=VALUE,...",
        help="parameter overrides; dotted keys are nested (model_options.test_size=0.3)",
    )
    for flag in LIST_OPTIONS:
        submit.add_argument(
            f"--{flag.replace('_', '-')}", dest=flag, action="append", metavar="NAME,..."
        )
    submit.add_argument("--load-versions", action="append", metavar="DATASET:VERSION,...")
    submit.add_argument("--env", "-e", help="the Kedro configuration environment")
    submit.add_argument(
        "--compute",
        choices=("lambda", "fargate"),
        help="where it runs: lambda (the default; long jobs continue across invocations) "
        "or fargate (one ECS task, for nodes longer than 15 minutes)",
    )
    submit.add_argument(
        "--max-job-seconds", type=int, metavar="N", help="fail the job if its run takes longer"
    )
    submit.add_argument("--idempotency-key", help="the same key returns the same job for 24 h")
    submit.add_argument(
        "--watch", "-w", action="store_true", help="follow it; exit 0 only if it completes"
    )
    submit.add_argument("--json", action="store_true", help="print the job record as JSON")

    status = command("status", cmd_status, "show a job")
    status.add_argument("job_id", metavar="ID")
    status.add_argument("--json", action="store_true", help="print the job record as JSON")

    watch_cmd = command("watch", cmd_watch, "follow a job; exit 0 only if it completes")
    watch_cmd.add_argument("job_id", metavar="ID")

    listing = command("list", cmd_list, "list your jobs, newest first")
    listing.add_argument(
        "--status", choices=["pending", "running", "completed", "failed", "cancelled"]
    )
    listing.add_argument("--pipeline", help="only this pipeline's jobs")
    listing.add_argument("--limit", type=int, default=20, help="jobs per page (1-100)")
    listing.add_argument("--cursor", help="the next page, as the last listing printed it")
    listing.add_argument("--json", action="store_true", help="print the page as JSON")

    logs = command("logs", cmd_logs, "print a job's log")
    logs.add_argument("job_id", metavar="ID")
    logs.add_argument("--follow", "-f", action="store_true", help="until the job ends")

    cancel = command("cancel", cmd_cancel, "cancel a job")
    cancel.add_argument("job_id", metavar="ID")

    retry = command("retry", cmd_retry, "run a finished job again")
    retry.add_argument("job_id", metavar="ID")
    retry.add_argument("--watch", "-w", action="store_true", help="follow the new job")

    outputs = command("outputs", cmd_outputs, "list the datasets a job saved")
    outputs.add_argument("job_id", metavar="ID")
    outputs.add_argument("--download", metavar="DIR", help="save each one into DIR")
    outputs.add_argument("--json", action="store_true", help="print the list as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    api_url = args.api or os.environ.get("KEDRO_JOBS_API") or DEFAULT_API
    token = args.token or os.environ.get("KEDRO_JOBS_TOKEN") or None
    console = Console(soft_wrap=True)  # ids and URLs stay on one line, to be copied
    errors = Console(stderr=True)
    try:
        with Api(api_url, token) as api:
            code: int = args.func(api, args, console)
            return code
    except UsageError as exc:
        errors.print(Text(f"kedro-jobs: {exc}", style="red"))
        return EXIT_USAGE
    except ApiError as exc:
        where = f"HTTP {exc.status}" if exc.status else "no answer"
        errors.print(Text(f"Error ({where}): ", style="bold red"), end="")
        errors.print(Text(str(exc)), soft_wrap=True)
        return EXIT_API
    except KeyboardInterrupt:
        errors.print(Text("Stopped watching; the job goes on.", style="dim"))
        return 130


if __name__ == "__main__":
    sys.exit(main())
