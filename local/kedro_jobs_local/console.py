"""`make dev`'s console: one line per job state change (created, started, continued, ended),
read from the job events the functions publish, as any subscriber would: a rule on moto's
default EventBridge bus sends them to a queue of this process's own, which it long-polls.
The processes' full logs go to a file unless `make dev ARGS=--verbose`."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from datetime import datetime
from typing import Any, TextIO

import boto3
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

from kedro_jobs_local.lifetime import StopSignals, stack_process, started

QUEUE = "kedro-jobs-dev-console"
RULE = "kedro-jobs-dev-console"


def subscribe(sqs: Any, events: Any) -> str:
    """The console's queue, receiving every job state change (idempotent)."""
    url: str = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pattern = {"source": ["kedro-jobs"], "detail": {"change": ["state"]}}
    events.put_rule(Name=RULE, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=RULE, Targets=[{"Id": "console", "Arn": arn}])
    return url


def line(detail: dict[str, Any]) -> str:
    """ "12:03:04  1a2b3c4d  data_loading  completed in 0.21 s" """
    status = str(detail.get("status"))
    when = str(detail.get("updated_at") or "")
    try:
        clock = datetime.fromisoformat(when.replace("Z", "+00:00")).astimezone()
        when = clock.strftime("%H:%M:%S")
    except ValueError:
        pass
    what = status
    segments = detail.get("segments") or []
    if status == "running" and segments:
        last = segments[-1]
        what = f"continues ({last.get('compute')}, segment {len(segments) + 1})"
    elif status == "running" and detail.get("cancel_requested"):
        what = "cancel requested"
    elif status == "pending" and detail.get("retry_of"):
        what = f"pending (retry of {str(detail['retry_of'])[:8]})"
    if status == "completed" and detail.get("execution_time") is not None:
        what += f" in {float(detail['execution_time']):.2f} s"
    if status in ("failed", "cancelled") and detail.get("error_message"):
        what += f": {str(detail['error_message']).splitlines()[0][:160]}"
    return f"{when}  {str(detail.get('id'))[:8]}  {detail.get('pipeline_name')}  {what}"


def run(out: TextIO = sys.stdout) -> None:
    signals = StopSignals()
    # Few retries: at a stop, a call to an emulator that has gone fails at once.
    quick = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2)
    sqs, events = boto3.client("sqs", config=quick), boto3.client("events", config=quick)
    url = ""
    last: dict[str, str] = {}  # by job: what its last line said
    started()
    while not signals.stopping:
        try:
            url = url or subscribe(sqs, events)
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
        except (EndpointConnectionError, ConnectionClosedError, sqs.exceptions.QueueDoesNotExist):
            # The emulator is down (make dev says so, and restarts it), or came back without
            # its state (no state folder): no traceback here, the lines resume once it is back.
            url = ""
            time.sleep(1.0)
            continue
        # In the order the changes were made (a receive may hold several jobs' events).
        events_seen = sorted(
            (json.loads(m["Body"]).get("detail") or {} for m in messages),
            key=lambda d: str(d.get("updated_at") or ""),
        )
        for detail in events_seen:
            text = line(detail)
            # A hand-off and the next segment's claim read the same: one line for both.
            said = text.split("  ", 1)[-1]
            if last.get(str(detail.get("id"))) != said:
                out.write(text + "\n")
                last[str(detail.get("id"))] = said
        out.flush()
        if messages:
            with contextlib.suppress(EndpointConnectionError, ConnectionClosedError):
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                             for i, m in enumerate(messages)],
                )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="make dev's one line per job state change")
    stack_process(parser, argv, log=False)
    run()


if __name__ == "__main__":
    main()
