"""`make dev`: the whole system on this machine, no Docker and no AWS account.

An embedded moto server (or the endpoint in AWS_ENDPOINT_URL, e.g. LocalStack), the template's
resources, the project's pipeline manifest, the API on http://127.0.0.1:8000 (the same FastAPI
app the Lambda runs), and consumer pollers that call the consumer's Lambda handler with real
SQS event batches, plus one for the dead-letter queue.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kedro_jobs_local.moto_server import MotoServer
from kedro_jobs_local.poller import PollerConfig, run_poller
from kedro_jobs_local.resources import LocalResources, create_resources, load_template

logger = logging.getLogger("kedro_jobs_local")

DEFAULT_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "KEDRO_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "KedroJobsLocal",
}


def _parameter(template: dict[str, Any], name: str, fallback: str) -> str:
    return str(template.get("Parameters", {}).get(name, {}).get("Default", fallback))


def external_endpoint() -> str | None:
    """An endpoint the user already set (LocalStack, say): then no moto is started."""
    return os.environ.get("AWS_ENDPOINT_URL") or None


@contextmanager
def aws_endpoint(moto_host: str, moto_port: int) -> Iterator[str]:
    endpoint = external_endpoint()
    if endpoint or any(v.startswith("AWS_ENDPOINT_URL_") for v in os.environ):
        yield endpoint or ""
        return
    server = MotoServer(moto_host, moto_port).start()
    try:
        yield server.endpoint_url
    finally:
        server.stop()


def banner(res: LocalResources, endpoint: str, api: str, workers: int, project: Path) -> str:
    return f"""
kedro-jobs is running locally
  API            {api}/api/v1   (docs: {api}/docs)
  AWS endpoint   {endpoint or "(per-service AWS_ENDPOINT_URL_* variables)"}
  region         {os.environ.get("AWS_DEFAULT_REGION")}
  jobs table     {res.table_name}
  queue          {res.queue_url}
  dead letters   {res.dlq_url}
  bucket         {res.bucket}
  Kedro project  {project}
  consumers      {workers}

Submit over HTTP:
  curl -s -X POST {api}/api/v1/jobs -H 'Content-Type: application/json' \\
       -d '{{"pipeline_name": "data_loading", "parameters": {{}}}}'
Or put a message on the queue, as another system would:
  aws --endpoint-url {endpoint or "$AWS_ENDPOINT_URL"} sqs send-message \\
      --queue-url {res.queue_url} --message-body '{{"version": 1, "pipeline_name": "data_loading"}}'
Ctrl-C stops everything.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make dev", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("KEDRO_JOBS_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("KEDRO_JOBS_PORT", "8000")))
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", "5000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "1")))
    parser.add_argument(
        "--project", help="Kedro project (default: KEDRO_PROJECT_PATH or the example)"
    )
    parser.add_argument("--consumer-timeout", help="override the template's ConsumerTimeout (s)")
    parser.add_argument("--stack-name", default="kedro-jobs")
    args = parser.parse_args(argv)

    for key, value in DEFAULT_ENV.items():
        os.environ.setdefault(key, value)
    if args.project:
        os.environ["KEDRO_PROJECT_PATH"] = str(Path(args.project).resolve())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)

    template = load_template()
    overrides = {"ConsumerTimeout": args.consumer_timeout} if args.consumer_timeout else {}
    timeout = float(args.consumer_timeout or _parameter(template, "ConsumerTimeout", "900"))
    batch_size = int(_parameter(template, "BatchSize", "1"))

    with aws_endpoint(args.host, args.moto_port) as endpoint:
        if endpoint:
            os.environ["AWS_ENDPOINT_URL"] = endpoint
        res = create_resources(
            endpoint_url=endpoint or None,
            stack_name=args.stack_name,
            parameter_overrides=overrides,
            template=template,
        )
        for function in ("ApiFunction", "ConsumerFunction"):
            os.environ.update(res.function_env(function))

        from kedro_jobs.consumer.publish_manifest import main as publish
        from kedro_jobs.consumer.runner import project_path_from_env

        project = project_path_from_env()
        publish([])

        import boto3

        sqs = boto3.client("sqs")
        arn = {
            url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            for url in (res.queue_url, res.dlq_url)
        }
        spawn = multiprocessing.get_context("spawn")
        workers = [
            spawn.Process(
                target=run_poller,
                args=(
                    PollerConfig(
                        res.queue_url, arn[res.queue_url], batch_size, timeout, warm_up="consumer"
                    ),
                    "kedro_jobs.consumer.handler:handler",
                ),
                name=f"consumer-{i}",
                daemon=True,
            )
            for i in range(max(1, args.workers))
        ]
        workers.append(
            spawn.Process(
                target=run_poller,
                args=(
                    PollerConfig(
                        res.dlq_url,
                        arn[res.dlq_url],
                        batch_size=10,
                        function_timeout=60,
                        function_name="DeadLetterFunction",
                    ),
                    "kedro_jobs.consumer.dlq_handler:handler",
                ),
                name="dead-letters",
                daemon=True,
            )
        )
        for worker in workers:
            worker.start()

        api = f"http://{args.host}:{args.port}"
        sys.stderr.write(banner(res, endpoint, api, args.workers, project))
        import uvicorn

        from kedro_jobs.api.app import create_app

        try:
            uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")
        finally:
            for worker in workers:
                worker.terminate()
            deadline = time.monotonic() + 10
            for worker in workers:
                worker.join(max(0.1, deadline - time.monotonic()))
                if worker.is_alive():
                    worker.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
