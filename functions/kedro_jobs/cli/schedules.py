"""`kedro-jobs schedule ...`: create, list, show, pause, resume, delete and run schedules
(docs/schedules.md). A schedule's job takes the flags `kedro-jobs submit` takes."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from kedro_jobs.cli.client import API_PREFIX, Api
from kedro_jobs.cli.commands import add_job_flags
from kedro_jobs.cli.commands import request_body as job_body
from kedro_jobs.cli.exit_codes import EXIT_OK
from kedro_jobs.cli.render import local_time, print_json, styled_status
from kedro_jobs.cli.watch import watch

Command = Callable[[Api, argparse.Namespace, Console], int]
PATH = f"{API_PREFIX}/schedules"


def add_commands(
    commands: Any, common: argparse.ArgumentParser
) -> None:  # commands: argparse's subparsers action
    """`kedro-jobs schedule COMMAND ...`."""
    schedule = commands.add_parser(
        "schedule",
        parents=[common],
        help="run a pipeline on a cron, a rate or once at a time",
        description="Schedules: a pipeline run on a cron, a rate or once at a time.",
    )
    actions = schedule.add_subparsers(dest="schedule_command", required=True, metavar="ACTION")

    def action(name: str, func: Command, help: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = actions.add_parser(
            name, parents=[common], help=help, description=help
        )
        sub.set_defaults(func=func)
        return sub

    create = action("create", cmd_create, "create a schedule")
    create.add_argument("name", metavar="NAME")
    create.add_argument("pipeline", metavar="PIPELINE")
    create.add_argument(
        "--expression",
        "-x",
        required=True,
        help="cron(0 2 * * ? *) (EventBridge's 6 fields), rate(1 hour) or at(2026-12-24T18:00:00)",
    )
    create.add_argument("--timezone", "-z", default="UTC", help="IANA name (default UTC)")
    create.add_argument(
        "--overlap",
        choices=("allow", "skip", "queue"),
        default="allow",
        help="when a fire comes while an earlier run still runs (default allow)",
    )
    create.add_argument("--description")
    create.add_argument("--flexible-window", type=int, metavar="MINUTES")
    create.add_argument("--json", action="store_true", help="print the schedule as JSON")
    add_job_flags(create)

    listing = action("list", cmd_list, "list your schedules")
    listing.add_argument("--json", action="store_true", help="print the page as JSON")

    for name, func, help in (
        ("show", cmd_show, "show a schedule: its job, next fire times and last run"),
        ("pause", cmd_pause, "pause a schedule (its fires meanwhile are not made up)"),
        ("resume", cmd_resume, "resume a paused schedule"),
        ("delete", cmd_delete, "delete a schedule (the jobs it made stay)"),
    ):
        sub = action(name, func, help)
        sub.add_argument("name", metavar="NAME")
        if name != "delete":
            sub.add_argument("--json", action="store_true", help="print the schedule as JSON")

    run = action("run", cmd_run, "run a schedule's job now")
    run.add_argument("name", metavar="NAME")
    run.add_argument("--watch", "-w", action="store_true", help="follow the job")


def _show(console: Console, schedule: dict[str, Any]) -> None:
    state = schedule["state"]
    console.print(
        Text.assemble(
            (schedule["name"], "bold"),
            "  ",
            (state, "green" if state == "enabled" else "yellow"),
            f"  {schedule['expression']} ({schedule['timezone']})",
        )
    )
    job = schedule["job"]
    console.print(f"  job: {job['pipeline_name']}  overlap: {schedule['overlap']}")
    if job.get("parameters"):
        console.print(f"  parameters: {job['parameters']}")
    if schedule.get("description"):
        console.print(f"  {schedule['description']}")
    fires = schedule.get("next_fires") or []
    console.print("  next: " + (", ".join(local_time(f) for f in fires) or "none"))
    last = schedule.get("last_run")
    if last:
        console.print(Text.assemble("  last run: ", last["id"], " ", styled_status(last["status"])))


def _print(console: Console, args: argparse.Namespace, schedule: dict[str, Any]) -> int:
    if getattr(args, "json", False):
        print_json(console, schedule)
    else:
        _show(console, schedule)
    return EXIT_OK


def cmd_create(api: Api, args: argparse.Namespace, console: Console) -> int:
    body: dict[str, Any] = {
        "name": args.name,
        "expression": args.expression,
        "timezone": args.timezone,
        "overlap": args.overlap,
        "job": job_body(args),
    }
    if args.description:
        body["description"] = args.description
    if args.flexible_window:
        body["flexible_window_minutes"] = args.flexible_window
    return _print(console, args, api.json("POST", PATH, json=body))


def cmd_list(api: Api, args: argparse.Namespace, console: Console) -> int:
    page = api.json("GET", PATH, params={"limit": 100})
    if args.json:
        print_json(console, page)
        return EXIT_OK
    table = Table("name", "state", "expression", "time zone", "next fire", "last run")
    for s in page["schedules"]:
        fires = s.get("next_fires") or []
        last = s.get("last_run")
        table.add_row(
            s["name"],
            s["state"],
            s["expression"],
            s["timezone"],
            local_time(fires[0]) if fires else "-",
            styled_status(last["status"]) if last else "-",
        )
    console.print(table)
    return EXIT_OK


def cmd_show(api: Api, args: argparse.Namespace, console: Console) -> int:
    return _print(console, args, api.json("GET", f"{PATH}/{args.name}"))


def cmd_pause(api: Api, args: argparse.Namespace, console: Console) -> int:
    return _print(console, args, api.json("POST", f"{PATH}/{args.name}/pause"))


def cmd_resume(api: Api, args: argparse.Namespace, console: Console) -> int:
    return _print(console, args, api.json("POST", f"{PATH}/{args.name}/resume"))


def cmd_delete(api: Api, args: argparse.Namespace, console: Console) -> int:
    api.request("DELETE", f"{PATH}/{args.name}")
    console.print(f"Deleted schedule {args.name}; the jobs it made stay.")
    return EXIT_OK


def cmd_run(api: Api, args: argparse.Namespace, console: Console) -> int:
    job = api.json("POST", f"{PATH}/{args.name}/run")
    console.print(
        Text.assemble("Submitted ", (job["id"], "bold"), " ", styled_status(job["status"]))
    )
    if not args.watch:
        return EXIT_OK
    return watch(api, job, console, args.interval)
