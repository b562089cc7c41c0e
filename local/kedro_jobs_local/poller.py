"""What Lambda's SQS event source mapping does, locally: long-poll the queue, hand the
consumer handler a real SQS event batch, delete the records it did not report as failed.
Reported records stay on the queue and come back after the visibility timeout, exactly as
with `ReportBatchItemFailures` on AWS."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from kedro_jobs.runner.control import hand_back_running
from kedro_jobs_local import tasks
from kedro_jobs_local.lambda_context import LocalContext
from kedro_jobs_local.lambda_events import to_lambda_record
from kedro_jobs_local.lifetime import one_line, stack_process, started

logger = logging.getLogger("kedro_jobs_local.poller")
_MAX_BACKOFF = 5.0

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class PollerConfig:
    queue_url: str
    queue_arn: str
    batch_size: int = 1
    function_timeout: float = 900.0
    wait_seconds: int = 1
    function_name: str = "ConsumerFunction"
    # "module:function" called once before polling, like Lambda's init phase (for the
    # consumer: warm_consumer below, which bootstraps the Kedro project).
    warm_up: str | None = None


def poll_once(
    sqs: Any, config: PollerConfig, handler: Handler, status: Status | None = None
) -> int:
    """Receive one batch, invoke the handler, delete what succeeded. Returns the batch size."""
    resp = sqs.receive_message(
        QueueUrl=config.queue_url,
        MaxNumberOfMessages=min(config.batch_size, 10),
        WaitTimeSeconds=config.wait_seconds,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    messages = resp.get("Messages", [])
    if status:
        status.polled()
    if not messages:
        return 0
    if status:
        status.busy(config.function_timeout)
    region = sqs.meta.region_name
    event = {"Records": [to_lambda_record(m, config.queue_arn, region) for m in messages]}
    try:
        result = handler(event, LocalContext(config.function_timeout, config.function_name))
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
    except Exception:
        # Like Lambda: a handler that raises fails the whole batch, and SQS redelivers it.
        logger.exception("handler raised; the whole batch will be redelivered")
        return len(messages)
    done = [m for m in messages if m["MessageId"] not in failed]
    if done:
        sqs.delete_message_batch(
            QueueUrl=config.queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
            ],
        )
    return len(messages)


class Status:
    """What this poller is doing, in a small file its supervisor reads to write the
    consumer's heartbeat (so no job waits for a heartbeat write, and no thread runs beside
    the consumer, which forks its jobs)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.state = "starting"
        self.last_poll_at: float | None = None
        self.busy_until: float | None = None
        self.batches = 0
        self.error: str | None = None
        self._written = 0.0
        self.write()

    def polled(self) -> None:
        self.last_poll_at = time.time()
        if self.state != "idle" or self.last_poll_at - self._written >= 1.0:
            self.state, self.busy_until = "idle", None
            self.write()

    def failed(self, reason: str) -> None:
        """It could not start (what `make dev` says when its first consumer cannot)."""
        self.state, self.error = "failed", reason
        self.write()

    def busy(self, seconds: float) -> None:
        self.state, self.busy_until = "busy", time.time() + seconds
        self.batches += 1
        self.write()

    def write(self) -> None:
        if not self.path:
            return
        self._written = time.time()
        data = {
            "state": self.state,
            "pid": os.getpid(),
            "last_poll_at": self.last_poll_at,
            "busy_until": self.busy_until,
            "batches": self.batches,
            **({"error": self.error} if self.error else {}),
        }
        tmp = f"{self.path}.tmp"
        with open(tmp, "w") as out:
            json.dump(data, out)
        os.replace(tmp, self.path)


def run_poller(
    config: PollerConfig,
    handler_path: str,
    endpoint_url: str | None = None,
    *,
    status_path: str | None = None,
) -> None:
    """A worker process's loop: until SIGTERM, SIGINT or SIGHUP, or its parent is gone."""
    stopping = False
    parent = os.getppid()

    def stop(*_: object) -> None:
        nonlocal stopping
        if os.getppid() != parent:
            os._exit(1)  # the supervisor is gone: nobody waits for this batch's end
        stopping = True
        # A job running here is handed back at its next node boundary (or from its last
        # checkpoint if its node goes on): the next start goes on from there at once.
        if hand_back_running():
            logger.info("%s: stopping; handing its job back", config.function_name)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    status = Status(status_path)
    module_name, _, attr = handler_path.partition(":")
    module = __import__(module_name, fromlist=[attr])
    handler: Handler = getattr(module, attr)
    if config.warm_up:
        began = time.perf_counter()
        warm_module, _, warm_attr = config.warm_up.partition(":")
        try:
            getattr(__import__(warm_module, fromlist=[warm_attr]), warm_attr)()
        except Exception as exc:
            status.failed(str(exc) or type(exc).__name__)
            raise
        logger.info("%s warmed up in %.1f s", config.function_name, time.perf_counter() - began)
    # boto3 finds AWS_ENDPOINT_URL_SQS, else AWS_ENDPOINT_URL, itself.
    sqs = boto3.client("sqs", endpoint_url=endpoint_url) if endpoint_url else boto3.client("sqs")
    started()
    failures = 0
    try:
        # Stop with the process that started us, however it ended (even SIGKILL).
        while not stopping and os.getppid() == parent:
            try:
                poll_once(sqs, config, handler, status)
                failures = 0
            except Exception as exc:  # the queue may be unreachable for a while; keep polling
                failures += 1
                delay = min(_MAX_BACKOFF, 0.5 * 2 ** (failures - 1))
                # One line per failure, and fewer and fewer of them: not a traceback a second.
                logger.warning("%s: poll failed (%s); retrying in %.1f s",
                               config.function_name, one_line(exc), delay)  # fmt: skip
                deadline = time.monotonic() + delay
                while not stopping and time.monotonic() < deadline:
                    time.sleep(0.1)
            tasks.reap_all()  # the Fargate tasks this poller started that ended
    finally:
        tasks.stop_all()  # and those still running: none outlives its poller


def warm_consumer() -> None:
    """Lambda's init phase, locally: bootstrap the Kedro project before the first poll, so
    no job pays Kedro's start-up (2-7 s) and a broken project shows at start. Jobs with
    ``compute: fargate`` then run as local task processes (kedro_jobs_local/tasks.py).

    Then publish the pipeline manifest, which the consumer publishes once per container
    anyway (after its first batch on AWS): `make dev` waits for its first consumer's, and so
    loads the project once, here, not a second time for the manifest (~0.6 CPU-s a start)."""
    from kedro_jobs.consumer.handler import consumer

    tasks.install_local_tasks()
    _ = consumer().runner  # the property bootstraps the project, once per process
    consumer().publish_manifest_once()
    consumer().fork_ahead()  # the first job's child too


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local stand-in for an SQS event source")
    parser.add_argument("--config", required=True, help="PollerConfig as JSON")
    parser.add_argument("--handler", required=True, help="module:function of the handler")
    parser.add_argument("--status-file", help="where to say what this poller is doing")
    args = stack_process(parser, argv)
    run_poller(PollerConfig(**json.loads(args.config)), args.handler, status_path=args.status_file)


if __name__ == "__main__":
    main()
