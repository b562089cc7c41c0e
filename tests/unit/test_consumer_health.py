"""`/health`'s verdict on the consumers (core/heartbeats.py `assess`), the time given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kedro_jobs.core.heartbeats import Backlog, ConsumerBeat, assess

NOW = datetime(2026, 1, 1, tzinfo=UTC)
EMPTY = Backlog(waiting=0, in_flight=0, oldest_age_seconds=None)


def _beat(state: str, polled: datetime | None) -> ConsumerBeat:
    return ConsumerBeat(
        consumer="c1",
        queue="jobs",
        state=state,
        started_at=NOW - timedelta(seconds=5),
        last_poll_at=polled,
        written_at=NOW,
    )


def test_health_says_starting_until_a_consumer_has_polled() -> None:
    warming = assess(EMPTY, [_beat("starting", None)], "jobs", NOW)
    assert warming.status == "starting"
    assert "none has polled" in (warming.detail or "")
    ready = assess(EMPTY, [_beat("idle", NOW - timedelta(seconds=1))], "jobs", NOW)
    assert (ready.status, ready.detail) == ("ok", None)


def test_no_consumer_alive_with_jobs_waiting_is_degraded_not_starting() -> None:
    stale = _beat("starting", None).model_copy(update={"written_at": NOW - timedelta(minutes=5)})
    waiting = Backlog(waiting=3, in_flight=0, oldest_age_seconds=None)
    assert assess(waiting, [stale], "jobs", NOW).status == "degraded"
