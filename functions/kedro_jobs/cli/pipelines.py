"""`kedro-jobs pipelines`: the project's pipelines (from the API's manifest) with their nodes
and parameter defaults."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from kedro_jobs.cli.client import API_PREFIX, Api
from kedro_jobs.cli.exit_codes import EXIT_OK
from kedro_jobs.cli.render import print_json


def cmd_pipelines(api: Api, args: argparse.Namespace, console: Console) -> int:
    body = api.json("GET", f"{API_PREFIX}/pipelines")
    pipelines = body.get("pipelines", body) if isinstance(body, dict) else body
    if args.json:
        print_json(console, pipelines)
        return EXIT_OK
    if not pipelines:
        console.print(Text("No pipelines published yet (the consumer publishes them).", "dim"))
        return EXIT_OK
    table = Table(box=None, header_style="dim")
    table.add_column("pipeline", no_wrap=True)
    table.add_column("nodes", justify="right", no_wrap=True)
    table.add_column("parameters (defaults)", overflow="fold")
    for item in pipelines:
        info = item if isinstance(item, dict) else {"name": item}
        # The defaults a run starts from (the parameters' names where no defaults are known).
        params = info.get("parameter_defaults") or info.get("parameters")
        table.add_row(
            Text(str(info.get("name"))),
            str(len(info.get("nodes") or [])) if "nodes" in info else "",
            Text(json.dumps(params) if params else ""),
        )
    console.print(table)
    return EXIT_OK
