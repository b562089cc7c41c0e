"""`kedro-jobs`: submit, watch and manage jobs from a terminal.

Exit codes: 0 success (for a watched job: it completed), 1 the job failed or was cancelled,
2 a usage error, 3 the API refused the request or could not be reached.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

from kedro_jobs.cli.client import Api, ApiError
from kedro_jobs.cli.commands import (
    LIST_DEFAULT_LIMIT,
    add_job_flags,
    cmd_cancel,
    cmd_list,
    cmd_logs,
    cmd_outputs,
    cmd_retry,
    cmd_status,
    cmd_submit,
    cmd_watch,
)
from kedro_jobs.cli.exit_codes import EXIT_API, EXIT_USAGE
from kedro_jobs.cli.ids import resolve
from kedro_jobs.cli.params import UsageError
from kedro_jobs.cli.pipelines import cmd_pipelines
from kedro_jobs.cli.schedules import add_commands as add_schedule_commands

DEFAULT_API = "http://127.0.0.1:8000"

Command = Callable[[Api, argparse.Namespace, Console], int]


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
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
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
    add_job_flags(submit)
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
    listing.add_argument(
        "--limit", type=int, default=LIST_DEFAULT_LIMIT, help="jobs per page (1-100)"
    )
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
    retry.add_argument(
        "--from-failure",
        action="store_true",
        help="run only the nodes that did not complete (and what depends on them), reusing "
        "what the others made; refused if the job kept nothing to reuse",
    )

    outputs = command("outputs", cmd_outputs, "list the datasets a job saved")
    outputs.add_argument("job_id", metavar="ID")
    outputs.add_argument("--download", metavar="DIR", help="save each one into DIR")
    outputs.add_argument("--json", action="store_true", help="print the list as JSON")

    add_schedule_commands(commands, common)  # `kedro-jobs schedule ...` (cli/schedules.py)
    pipelines = command("pipelines", cmd_pipelines, "list the project's pipelines")
    pipelines.add_argument("--json", action="store_true", help="print them as JSON")
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kedro-jobs")
    except PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    api_url = args.api or os.environ.get("KEDRO_JOBS_API") or DEFAULT_API
    token = args.token or os.environ.get("KEDRO_JOBS_TOKEN") or None
    console = Console(soft_wrap=True)  # ids and URLs stay on one line, to be copied
    errors = Console(stderr=True)
    try:
        with Api(api_url, token) as api:
            if getattr(args, "job_id", None):  # the short id the page shows, or a full one
                args.job_id = resolve(api, args.job_id)
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
