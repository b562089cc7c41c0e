"""What EventBridge Scheduler does, locally: moto keeps schedules but never fires them, so
`make dev` runs this firer. It reads the same schedule definitions from moto's Scheduler API,
works out their fire times with the API's own evaluation (kedro_jobs.core.schedule_times:
EventBridge cron, rate and at, in the schedule's time zone) and sends the target's input, with
``<aws.scheduler.scheduled-time>`` filled in, to the target queue: the message Scheduler sends.

Across a restart of `make dev` (its state folder keeps the schedules with the rest):
- an ``at()`` schedule whose time passed while the stack was down fires once on start (the
  at() schedules fired are remembered in the state folder, so none fires twice);
- cron and rate fires missed while it was down are not made up, but for those of the last
  minute before it started: firing starts again from the restart (a backlog of missed
  nightly runs all at once is rarely what anyone wants, and EventBridge itself never lets a
  fire go missing this way).
A paused schedule's fires are not made up when it is resumed, as on EventBridge. A new rate()
schedule fires as soon as it is created, then every interval, as on EventBridge.

The clock is injected (``Firer(clock=...)``): tests move time instead of waiting for it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kedro_jobs.core.schedule_times import InvalidExpression, fires_between, next_fires, parse, zone
from kedro_jobs_local.lifetime import run_every, stack_process, started

logger = logging.getLogger("kedro_jobs_local.scheduler")
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
EXECUTION_ID = "<aws.scheduler.execution-id>"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
START_GRACE = timedelta(minutes=1)


def now_utc() -> datetime:
    return datetime.now(UTC)


def fire_body(template: str, fire: datetime) -> str:
    """The target input as Scheduler sends it for the fire at ``fire``."""
    when = fire.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return template.replace(SCHEDULED_TIME, when).replace(EXECUTION_ID, str(uuid.uuid4()))


class Firer:
    def __init__(
        self,
        *,
        group: str,
        scheduler: Any,
        sqs: Any,
        state_file: Path | None = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.group = group
        self.scheduler = scheduler
        self.sqs = sqs
        self.state_file = state_file
        self.clock = clock
        # Fires due this long before the firer started are still sent: a schedule made while
        # `make dev` was starting (the API is up before the firer) fires as it would on AWS,
        # and a fire sent twice makes no second job (its job id comes from its time).
        self.started = clock() - START_GRACE
        # Per schedule: fires up to this time are done (in memory: see the module's doc).
        self.cursors: dict[str, datetime] = {}
        self.fired_at: set[str] = set()  # at() schedules fired: "name|expression"
        self._queue_urls: dict[str, str] = {}
        if state_file is not None and state_file.exists():
            saved = json.loads(state_file.read_text())
            self.fired_at = set(saved.get("fired_at", []))

    def tick(self) -> list[tuple[str, datetime]]:
        """One pass over the group's schedules: every fire due since the last pass is sent.
        Returns what was fired (schedule name, fire time)."""
        now = self.clock()
        fired: list[tuple[str, datetime]] = []
        seen: set[str] = set()
        for name in self._names():
            seen.add(name)
            try:
                fired.extend(self._fire_due(name, now))
            except InvalidExpression as exc:
                logger.warning("schedule %s not fired: %s", name, exc)
        for gone in set(self.cursors) - seen:
            del self.cursors[gone]
        if fired:
            self._save()
        return fired

    def _names(self) -> list[str]:
        names: list[str] = []
        for page in self.scheduler.get_paginator("list_schedules").paginate(GroupName=self.group):
            names.extend(s["Name"] for s in page["Schedules"])
        return names

    def _fire_due(self, name: str, now: datetime) -> list[tuple[str, datetime]]:
        try:
            spec = self.scheduler.get_schedule(Name=name, GroupName=self.group)
        except self.scheduler.exceptions.ResourceNotFoundException:
            return []  # deleted since it was listed
        if spec.get("State") == "DISABLED":
            self.cursors[name] = now  # paused: its fires meanwhile are not made up
            return []
        expr = parse(spec["ScheduleExpression"])
        tz = zone(spec.get("ScheduleExpressionTimezone") or "UTC")
        creation = spec["CreationDate"].astimezone(UTC)
        created = creation.replace(microsecond=0)  # fire times are whole seconds
        if expr.kind == "at":
            key = f"{name}|{expr.text}"
            due = next_fires(expr, tz, after=_EPOCH, count=1, anchor=created)
            if key in self.fired_at or not due or due[0] > now:
                return []
            self.fired_at.add(key)
            fires = due
        else:
            start = self.cursors.get(name)
            if start is None:  # first seen: from its creation if that was since our start
                start = created - timedelta(seconds=1) if creation >= self.started else self.started
            fires = fires_between(expr, tz, start=start, end=now, anchor=created)
            self.cursors[name] = now
        target = spec["Target"]
        for fire in fires:
            self.sqs.send_message(
                QueueUrl=self._queue_url(target["Arn"]),
                MessageBody=fire_body(target.get("Input", "{}"), fire),
            )
            logger.info("fired %s for %s", name, fire.isoformat())
        return [(name, fire) for fire in fires]

    def _queue_url(self, arn: str) -> str:
        if arn not in self._queue_urls:
            queue = arn.rsplit(":", 1)[-1]
            self._queue_urls[arn] = self.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        return self._queue_urls[arn]

    def _save(self) -> None:
        if self.state_file is None:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps({"fired_at": sorted(self.fired_at)}))
        temporary.replace(self.state_file)


def run(firer: Firer, every: float) -> None:
    """A pass every ``every`` seconds until SIGTERM, SIGINT or SIGHUP; a pass that fails is
    tried again at the next, as a scheduler retries."""
    run_every(every, firer.tick, first_after=0.0, logger=logger)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fire the schedules kept in moto's Scheduler")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between passes")
    parser.add_argument("--state-file", type=Path, help="where fired at() schedules are kept")
    args = stack_process(parser, argv)
    import boto3

    from kedro_jobs.core.settings import Settings

    group = Settings().schedule_group_name
    if not group:
        logger.info("no schedule group configured: nothing to fire")
        return
    firer = Firer(
        group=group,
        scheduler=boto3.client("scheduler"),
        sqs=boto3.client("sqs"),
        state_file=args.state_file,
    )
    logger.info("firing the schedules of group %s (pid %d)", group, os.getpid())
    started()
    run(firer, args.every)


if __name__ == "__main__":
    main()
