"""The consumers' heartbeats, written by `make dev`'s supervisor for its pollers: each poller
keeps a small status file, and its heartbeat goes to S3 from there, so the API reads
consumers as it would on AWS (kedro_jobs.core.heartbeats)."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from kedro_jobs_local.supervisor import Child

logger = logging.getLogger("kedro_jobs_local")


class Heartbeat:
    """Writes each poller's heartbeat from the small status file it keeps (see poller.py),
    so the API reads consumers through S3 as it would on AWS."""

    def __init__(self, bucket: str, status_dir: Path) -> None:
        from kedro_jobs.core.heartbeats import Heartbeats

        self.beats = Heartbeats(bucket)
        self.status_dir = status_dir
        self.pollers: dict[str, tuple[Child, str, datetime]] = {}
        self._written: dict[str, tuple[float, str]] = {}  # when, and in which state
        self._complained = 0.0

    def path(self, name: str) -> Path:
        return self.status_dir / f"{name}.json"

    def started(self, child: Child, queue_name: str) -> None:
        self.pollers[child.name] = (child, queue_name, datetime.now(UTC))
        self._written.pop(child.name, None)
        # What a dead predecessor last said is not what this one does.
        self.path(child.name).unlink(missing_ok=True)

    def tick(self) -> None:
        """Called every second: a beat for each poller whose state changed (at most one a
        second) or whose last beat is a beat's interval old (the settings')."""
        from kedro_jobs.core.errors import DependencyUnavailable
        from kedro_jobs.core.heartbeats import ConsumerBeat
        from kedro_jobs.core.settings import get_settings

        now = datetime.now(UTC)
        every = get_settings().consumer_heartbeat_seconds

        def at(seconds: float | None) -> datetime | None:
            return datetime.fromtimestamp(seconds, UTC) if seconds else None

        for name, (child, queue, started) in self.pollers.items():
            if not child.alive():
                continue  # the supervisor is restarting it; its old beat goes stale
            try:
                status = json.loads(self.path(name).read_text())
            except (OSError, ValueError):
                status = {"state": "starting"}
            state = str(status.get("state", "starting"))
            written, was = self._written.get(name, (0.0, ""))
            if state == was and time.monotonic() - written < every:
                continue
            beat = ConsumerBeat(
                consumer=name,
                queue=queue,
                state=state,
                pid=child.pid,
                started_at=started,
                last_poll_at=at(status.get("last_poll_at")),
                busy_until=at(status.get("busy_until")),
                batches=int(status.get("batches", 0)),
                restarts=child.restarts,
                written_at=now,
            )
            try:
                self.beats.beat(beat)
                self._written[name] = (time.monotonic(), state)
            except DependencyUnavailable as exc:
                if time.monotonic() - self._complained > 30:
                    self._complained = time.monotonic()
                    logger.warning("heartbeats not written: %s", exc.reason)
                return
