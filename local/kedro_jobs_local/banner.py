"""What `make dev` prints once everything is up: where each part is, and how to submit a job."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from kedro_jobs_local.endpoints import SERVICES, endpoint_of
from kedro_jobs_local.resources import LocalResources


def banner(
    res: LocalResources,
    api: str,
    workers: int,
    project: Path,
    pipelines: list[str],
    state_dir: Path | None,
    data_root: str,
) -> str:
    example = next((p for p in pipelines if p != "__default__"), "__default__")
    # The CLI, as this stack's API needs it called (the default address needs no flag).
    cli = str(Path(sys.executable).with_name("kedro-jobs"))
    with contextlib.suppress(ValueError):  # shorter from the repository's folder
        cli = str(Path(cli).relative_to(Path.cwd()))
    if not api.endswith(":8000") or "127.0.0.1" not in api:
        cli = f"KEDRO_JOBS_API={api} {cli}"
    endpoints = {s: endpoint_of(s) for s in SERVICES}
    if len(set(endpoints.values())) == 1:
        aws = f"  AWS endpoint   {endpoints['sqs']}\n"
    else:
        aws = "".join(f"  {s + ' endpoint':<15}{url}\n" for s, url in endpoints.items())
    sqs_endpoint = endpoints["sqs"]
    region = os.environ.get("AWS_DEFAULT_REGION")
    credentials = (
        f"export AWS_ACCESS_KEY_ID={os.environ.get('AWS_ACCESS_KEY_ID')} "
        f"AWS_SECRET_ACCESS_KEY={os.environ.get('AWS_SECRET_ACCESS_KEY')} "
        f"AWS_DEFAULT_REGION={region}"
    )
    return f"""
kedro-jobs is running locally
  web page       {api}/
  API            {api}/api/v1   (docs: {api}/docs, health: {api}/api/v1/health)
{aws}  region         {os.environ.get("AWS_DEFAULT_REGION")}
  jobs table     {res.table_name}
  queue          {res.queue_url}
  dead letters   {res.dlq_url}
  bucket         {res.bucket}
  Kedro project  {project}
  pipelines      {", ".join(pipelines) or "(none published)"}
  data root      {data_root or "(the project folder)"}
  consumers      {workers}
  state          {state_dir or "(in memory: gone when this stops)"}

Submit over HTTP:
  curl -s -X POST {api}/api/v1/jobs -H 'Content-Type: application/json' \\
       -d '{{"pipeline_name": "{example}", "parameters": {{}}}}'
Or from a terminal, with the CLI this installed:
  {cli} submit {example} --watch
Or put a message on the queue, as another system would (the aws CLI needs these variables;
moto takes any credentials):
  {credentials}
  aws --endpoint-url {sqs_endpoint} sqs send-message \\
      --queue-url {res.queue_url} --message-body '{{"version": 1, "pipeline_name": "{example}"}}'
Ctrl-C (or SIGTERM, SIGHUP) stops everything; the state stays for the next start.
"""


def console_note(log: Path | None) -> str:
    """Under the banner: what the console shows from now on."""
    if log is None:
        return "Every process's log follows (--verbose).\n\n"
    return (
        f"One line per job state change follows; the processes' full logs are in {log}\n"
        '(make dev ARGS="--verbose" shows them here instead).\n\n'
    )
