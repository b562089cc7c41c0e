"""What `make dev` prints once everything is up: where each part is, and how to submit a job."""

from __future__ import annotations

import os
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
    endpoints = {s: endpoint_of(s) for s in SERVICES}
    if len(set(endpoints.values())) == 1:
        aws = f"  AWS endpoint   {endpoints['sqs']}\n"
    else:
        aws = "".join(f"  {s + ' endpoint':<15}{url}\n" for s, url in endpoints.items())
    sqs_endpoint = endpoints["sqs"]
    return f"""
kedro-jobs is running locally
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
Or put a message on the queue, as another system would:
  aws --endpoint-url {sqs_endpoint} sqs send-message \\
      --queue-url {res.queue_url} --message-body '{{"version": 1, "pipeline_name": "{example}"}}'
Ctrl-C (or SIGTERM, SIGHUP) stops everything; the state stays for the next start.
"""
