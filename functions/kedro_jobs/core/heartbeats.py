"""Is anyone taking the jobs? Consumer heartbeats and the queue's backlog, for `/health`.

A heartbeat is one small JSON object per consumer under ``health/consumers/`` in the
artifacts bucket. S3 rather than a table item: the API already reads that bucket (and may
list it), per-consumer objects need no locking between writers, nothing joins the job
table's indexes or TTL, and one ListObjectsV2 finds them all. Locally, `make dev`'s
supervisor writes them for its pollers; on AWS a consumer may write its own, and where none
writes any, the queue's own figures (waiting messages, the age of the oldest one from
CloudWatch) tell whether jobs are being taken. The same reads run everywhere: no code here
knows which backend it talks to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from kedro_jobs.core.aws import aws_errors, client, error_code

PREFIX = "health/consumers/"
# A writer refreshes each heartbeat every `consumer_heartbeat_seconds` (the settings; 5 s by
# default). One not refreshed for MISSED_BEATS beats has no writer left (so one slow write
# does not flap the health), and an idle consumer that has not polled for as long is hung,
# not alive; one still starting (a Kedro project's bootstrap takes seconds) is given longer.
MISSED_BEATS = 3
STARTING_LIMIT = 120.0
# Jobs that have waited this long on a queue that consumers poll are not being taken
# (a Lambda event source polls continuously; a backlog older than this is a stall).
STALL_AGE_SECONDS = 300.0
_DEPENDENCY = "S3"


class ConsumerBeat(BaseModel):
    """What a consumer last said of itself."""

    consumer: str
    queue: str  # the queue's name
    state: str = "idle"  # starting | idle | busy
    pid: int | None = None
    started_at: datetime
    last_poll_at: datetime | None = None
    busy_until: datetime | None = None  # a batch's deadline (the function's timeout)
    batches: int = 0
    restarts: int = 0
    written_at: datetime

    def alive(self, now: datetime, beat_seconds: float) -> bool:
        """Alive at ``now`` for writers that beat every ``beat_seconds``."""
        missed = MISSED_BEATS * beat_seconds
        if now - self.written_at > timedelta(seconds=missed):
            return False
        if self.state == "busy":
            return self.busy_until is None or now <= self.busy_until
        since = self.last_poll_at or self.started_at
        limit = STARTING_LIMIT if self.state == "starting" else missed
        return now - since <= timedelta(seconds=limit)


def _key(consumer: str) -> str:
    return f"{PREFIX}{consumer}.json"


class Heartbeats:
    """Consumer heartbeats as objects in the artifacts bucket."""

    def __init__(self, bucket: str, *, s3: Any = None) -> None:
        self.bucket = bucket
        self._client = s3

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = client("s3")
        return self._client

    def beat(self, beat: ConsumerBeat) -> None:
        with aws_errors(_DEPENDENCY):
            self.client.put_object(
                Bucket=self.bucket,
                Key=_key(beat.consumer),
                Body=beat.model_dump_json().encode(),
                ContentType="application/json",
            )

    def clear(self) -> None:
        """Forget every consumer (a local stack starting anew)."""
        for key in self._keys():
            with aws_errors(_DEPENDENCY):
                self.client.delete_object(Bucket=self.bucket, Key=key)

    def read(self) -> list[ConsumerBeat]:
        beats = []
        for key in self._keys():
            with aws_errors(_DEPENDENCY):
                try:
                    body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                except Exception as exc:
                    if error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
                        continue  # removed between the listing and the read
                    raise
            try:
                beats.append(ConsumerBeat.model_validate(json.loads(body)))
            except ValueError:
                continue  # not one of ours: ignore it rather than fail the health
        return sorted(beats, key=lambda b: b.consumer)

    def _keys(self) -> list[str]:
        with aws_errors(_DEPENDENCY):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=PREFIX
            )
            return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


@dataclass(frozen=True)
class Backlog:
    waiting: int  # visible: no consumer has taken them
    in_flight: int  # taken, not yet deleted
    oldest_age_seconds: float | None  # None where the metric is not available


def read_backlog(queue_url: str) -> Backlog:
    """The queue's depth (SQS attributes) and its oldest message's age (CloudWatch)."""
    with aws_errors("SQS"):
        attrs = client("sqs").get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
    return Backlog(
        waiting=int(attrs.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        oldest_age_seconds=_oldest_age(queue_url.rstrip("/").rsplit("/", 1)[-1]),
    )


def _oldest_age(queue_name: str) -> float | None:
    """CloudWatch's ApproximateAgeOfOldestMessage (one-minute resolution), or None where the
    metric is missing or unreadable (emulators publish none; the role may lack the right)."""
    now = datetime.now(UTC)
    try:
        points = (
            client("cloudwatch")
            .get_metric_statistics(
                Namespace="AWS/SQS",
                MetricName="ApproximateAgeOfOldestMessage",
                Dimensions=[{"Name": "QueueName", "Value": queue_name}],
                StartTime=now - timedelta(minutes=5),
                EndTime=now,
                Period=60,
                Statistics=["Maximum"],
            )
            .get("Datapoints", [])
        )
    except Exception:  # the age is an extra: health must not fail for want of it
        return None
    if not points:
        return None
    return float(max(points, key=lambda p: p["Timestamp"])["Maximum"])


@dataclass(frozen=True)
class ConsumerHealth:
    status: str  # ok | starting | degraded
    detail: str | None
    backlog: Backlog
    beats: list[ConsumerBeat]
    alive: list[str]  # consumers of the jobs queue that are alive


def assess(
    backlog: Backlog,
    beats: list[ConsumerBeat],
    queue_name: str,
    now: datetime | None = None,
    *,
    beat_seconds: float,
) -> ConsumerHealth:
    """Degraded when jobs wait and nothing takes them: consumers are known but none of the
    jobs queue's is alive, or the oldest waiting job is older than STALL_AGE_SECONDS.
    Starting while the consumers known are alive but none has polled the queue yet."""
    now = now or datetime.now(UTC)
    mine = [b for b in beats if b.queue == queue_name]
    alive = [b.consumer for b in mine if b.alive(now, beat_seconds)]
    detail = None
    if backlog.waiting and mine and not alive:
        detail = f"{backlog.waiting} job(s) waiting and no consumer alive ({len(mine)} known)"
    elif backlog.waiting and (backlog.oldest_age_seconds or 0) > STALL_AGE_SECONDS:
        detail = (
            f"{backlog.waiting} job(s) waiting; the oldest for {backlog.oldest_age_seconds:.0f} s"
        )
    if detail:
        return ConsumerHealth("degraded", detail, backlog, beats, alive)
    polled = [b for b in mine if b.consumer in alive and b.last_poll_at is not None]
    if alive and not polled:
        # Warming up (a Kedro project's bootstrap takes seconds): a job sent now waits.
        detail = f"{len(alive)} consumer(s) starting; none has polled the queue yet"
        return ConsumerHealth("starting", detail, backlog, beats, alive)
    return ConsumerHealth("ok", None, backlog, beats, alive)
