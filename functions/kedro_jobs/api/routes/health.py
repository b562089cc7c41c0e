"""`/api/v1/health`: one check per dependency (503 naming the one that failed), and whether
the jobs are being taken: the queue's backlog and the consumers' heartbeats (200 with
status `degraded` when jobs wait and nothing takes them: the API itself still works)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from kedro_jobs.api.deps import Deps
from kedro_jobs.core.errors import DependencyUnavailable
from kedro_jobs.core.heartbeats import Backlog, ConsumerBeat, Heartbeats, assess, read_backlog

router = APIRouter(tags=["health"])


@router.get("/health", summary="Health of the table, queue and bucket, and of the consumers")
def health(services: Deps) -> JSONResponse:
    settings = services.settings
    found: dict[str, Any] = {}

    def queue() -> None:
        found["backlog"] = read_backlog(settings.jobs_queue_url)

    def bucket() -> None:
        services.artifacts.ping()
        found["beats"] = Heartbeats(settings.artifacts_bucket).read()

    checks: dict[str, Callable[[], None]] = {
        "table": services.store.ping,
        "queue": queue,
        "bucket": bucket,
    }
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except DependencyUnavailable as exc:
            results[name] = f"error: {exc.reason}"
    failed = [name for name, result in results.items() if result != "ok"]
    body: dict[str, Any] = {"status": "unavailable" if failed else "ok", "checks": results}
    if failed:
        body["detail"] = f"unavailable: {', '.join(failed)}"
    now = datetime.now(UTC)
    beats: list[ConsumerBeat] = found.get("beats", [])
    backlog: Backlog | None = found.get("backlog")
    if backlog is not None:
        queue_name = settings.jobs_queue_url.rstrip("/").rsplit("/", 1)[-1]
        verdict = assess(
            backlog, beats, queue_name, now, beat_seconds=settings.consumer_heartbeat_seconds
        )
        if verdict.detail and not failed:
            body.update(status=verdict.status, detail=verdict.detail)
        body["queue"] = {
            "waiting": backlog.waiting,
            "in_flight": backlog.in_flight,
            "oldest_age_seconds": backlog.oldest_age_seconds,
        }
        body["consumers_alive"] = len(verdict.alive)
    body["consumers"] = [
        _describe(beat, now, settings.consumer_heartbeat_seconds) for beat in beats
    ]
    return JSONResponse(body, status_code=503 if failed else 200)


def _describe(beat: ConsumerBeat, now: datetime, beat_seconds: float) -> dict[str, Any]:
    polled = beat.last_poll_at
    return {
        "id": beat.consumer,
        "queue": beat.queue,
        "alive": beat.alive(now, beat_seconds),
        "state": beat.state,
        "last_poll_at": polled.isoformat() if polled else None,
        "seconds_since_poll": round((now - polled).total_seconds(), 1) if polled else None,
        "batches": beat.batches,
        "restarts": beat.restarts,
    }
