"""The `kedro-jobs` commands: one function each, given the API client, the parsed arguments
and the console; each returns its exit code."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from rich.console import Console
from rich.table import Table
from rich.text import Text

from kedro_jobs.cli.client import Api, ApiError
from kedro_jobs.cli.exit_codes import EXIT_OK
from kedro_jobs.cli.ids import short
from kedro_jobs.cli.nodes import TERMINAL
from kedro_jobs.cli.params import merge, parse_list, parse_load_versions, parse_params
from kedro_jobs.cli.render import (
    duration,
    local_time,
    print_json,
    print_text,
    progress_text,
    show_job,
    size_text,
    styled_status,
)
from kedro_jobs.cli.watch import watch
from kedro_jobs.names import COMPUTE_NAMES

LIST_DEFAULT_LIMIT = 20
NARROW_TERMINAL = 110  # columns: below, `list` shows short ids

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


def add_job_flags(parser: argparse.ArgumentParser) -> None:
    """A job's flags (kedro run's options, compute, limits), for `submit` and for a
    schedule's job: read back by ``request_body``."""
    parser.add_argument(
        "--params",
        action="append",
        metavar="KEY=VALUE,...",
        help="parameter overrides; dotted keys are nested (model_options.test_size=0.3)",
    )
    for flag in LIST_OPTIONS:
        parser.add_argument(
            f"--{flag.replace('_', '-')}", dest=flag, action="append", metavar="NAME,..."
        )
    parser.add_argument("--load-versions", action="append", metavar="DATASET:VERSION,...")
    parser.add_argument("--env", "-e", help="the Kedro configuration environment")
    parser.add_argument(
        "--compute",
        choices=COMPUTE_NAMES,
        help="where it runs (the deployment must offer it): lambda (the default; long jobs "
        "continue across invocations) or a task backend, e.g. fargate (one ECS task, for "
        "nodes longer than 15 minutes)",
    )
    parser.add_argument(
        "--max-job-seconds", type=int, metavar="N", help="fail the job if its run takes longer"
    )
    parser.add_argument(
        "--no-fan-out",
        dest="fan_out",
        action="store_false",
        help="run on one worker even where the pipeline's groups could run side by side",
    )


def request_body(args: argparse.Namespace) -> dict[str, Any]:
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
    if args.fan_out is False:
        body["fan_out"] = False
    return body


def cmd_submit(api: Api, args: argparse.Namespace, console: Console) -> int:
    job = api.submit(request_body(args), idempotency_key=args.idempotency_key)
    if not args.watch:
        if args.json:
            print_json(console, job)
        else:
            console.print(
                Text.assemble("Submitted ", (job["id"], "bold"), " ", styled_status(job["status"]))
            )
        return EXIT_OK
    console.print(Text.assemble("Submitted ", (job["id"], "bold")))
    return watch(api, job, console, args.interval)


def cmd_status(api: Api, args: argparse.Namespace, console: Console) -> int:
    job = api.job(args.job_id)
    if args.json:
        print_json(console, job)
    else:
        show_job(console, job)
    return EXIT_OK


def cmd_watch(api: Api, args: argparse.Namespace, console: Console) -> int:
    return watch(api, api.job(args.job_id), console, args.interval)


def cmd_list(api: Api, args: argparse.Namespace, console: Console) -> int:
    page = api.jobs(
        limit=args.limit, status=args.status, pipeline_name=args.pipeline, cursor=args.cursor
    )
    if args.json:
        print_json(console, page)
        return EXIT_OK
    table = Table(box=None, header_style="dim")
    # Ids are meant to be copied: whole where they fit, else the short prefix every command
    # takes (cli/ids.py).
    narrow = console.width < NARROW_TERMINAL
    table.add_column("job", no_wrap=True, min_width=8 if narrow else 36)
    table.add_column("status", no_wrap=True, min_width=9)
    table.add_column("pipeline", no_wrap=True)
    table.add_column("created", no_wrap=True, min_width=19)
    table.add_column("duration", no_wrap=True)
    table.add_column("progress", overflow="fold")
    for job in page["jobs"]:
        table.add_row(
            Text(short(job["id"]) if narrow else job["id"]),
            styled_status(job["status"]),
            Text(job["pipeline_name"]),
            local_time(job.get("created_at")),
            duration(job.get("execution_time")),
            Text(progress_text(job)),
        )
    console.print(table if page["jobs"] else Text("No jobs.", style="dim"))
    if page.get("next_cursor"):
        # The next page is the same listing's: its filters go with the cursor.
        more = ["kedro-jobs", "list"]
        if args.status:
            more += ["--status", args.status]
        if args.pipeline:
            more += ["--pipeline", shlex.quote(args.pipeline)]
        if args.limit != LIST_DEFAULT_LIMIT:
            more += ["--limit", str(args.limit)]
        more += ["--cursor", page["next_cursor"]]
        print_text(console, "More: " + " ".join(more), style="dim")
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
        console.print(Text.assemble("Job ", (job["id"], "bold"), " ", styled_status("cancelled")))
    else:
        console.print(
            Text.assemble("Cancel requested: job ", (job["id"], "bold"), " stops at the next node")
        )
    return EXIT_OK


def cmd_retry(api: Api, args: argparse.Namespace, console: Console) -> int:
    from_failure = bool(getattr(args, "from_failure", False))
    job = api.retry(args.job_id, from_failure=from_failure)
    how = "Rerunning from failure as " if from_failure else "Retrying as "
    console.print(Text.assemble(how, (job["id"], "bold"), " ", styled_status(job["status"])))
    if job.get("reused_from"):
        reused = f"The nodes job {job['reused_from']} completed are not run again"
        console.print(Text(f"{reused}: their outputs are reused"))
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
        print_json(console, outputs)
    elif outputs:
        table = Table(box=None, header_style="dim")
        for column in ("dataset", "type", "version", "size", "uri"):
            table.add_column(column)
        for o in outputs:
            table.add_row(
                Text(str(o["name"])),
                Text(str(o.get("type") or "")),
                Text(str(o.get("version") or "")),
                size_text(o.get("size")),
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
        if output.get("files") is not None:  # a folder: its URL lists its files
            _save_folder(api, str(output["url"]), path)
        else:
            _save(api, str(output["url"]), path)
        console.print(Text.assemble("Saved ", (str(output["name"]), "bold"), f" to {path}"))
    return EXIT_OK


def _save(api: Api, url: str, path: Path) -> None:
    with api.download(url) as response, path.open("wb") as handle:
        for chunk in response.iter_bytes():
            handle.write(chunk)


def _save_folder(api: Api, url: str, folder: Path) -> None:
    """Every file a folder output lists, under ``folder`` at its path in the folder (a path
    that would leave ``folder`` is skipped)."""
    with api.download(url) as response:
        listing = json.loads(response.read())
    root = folder.resolve()
    for file in listing.get("files", []):
        path = (folder / str(file["path"])).resolve()
        if not path.is_relative_to(root) or path == root:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        _save(api, str(file["url"]), path)
