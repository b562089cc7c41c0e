"""`/health`'s verdict on the consumers (core/heartbeats.py `assess`), the time given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kedro_jobs.core.heartbeats import Backlog, ConsumerBeat, assess
from kedro_jobs.core.settings import Settings

NOW = datetime(2026, 1, 1, tzinfo=UTC)
EMPTY = Backlog(waiting=0, in_flight=0, oldest_age_seconds=None)
WAITING = Backlog(waiting=3, in_flight=0, oldest_age_seconds=None)
BEAT = Settings().consumer_heartbeat_seconds


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
    warming = assess(EMPTY, [_beat("starting", None)], "jobs", NOW, beat_seconds=BEAT)
    assert warming.status == "starting"
    assert "none has polled" in (warming.detail or "")
    ready = assess(
        EMPTY, [_beat("idle", NOW - timedelta(seconds=1))], "jobs", NOW, beat_seconds=BEAT
    )
    assert (ready.status, ready.detail) == ("ok", None)


def test_no_consumer_alive_with_jobs_waiting_is_degraded_not_starting() -> None:
    stale = _beat("starting", None).model_copy(update={"written_at": NOW - timedelta(minutes=5)})
    assert assess(WAITING, [stale], "jobs", NOW, beat_seconds=BEAT).status == "degraded"


def test_an_idle_consumer_that_stopped_polling_is_not_alive_after_three_beats() -> None:
    # The template's default: a beat every 5 s, so a hung consumer shows within 15 s.
    assert BEAT == 5.0
    for beat_seconds in (BEAT, 2.0):  # CONSUMER_HEARTBEAT_SECONDS shortens it (tests)
        polled = _beat("idle", NOW - timedelta(seconds=3 * beat_seconds - 0.5))
        hung = _beat("idle", NOW - timedelta(seconds=3 * beat_seconds + 0.5))
        assert assess(WAITING, [polled], "jobs", NOW, beat_seconds=beat_seconds).status == "ok"
        verdict = assess(WAITING, [hung], "jobs", NOW, beat_seconds=beat_seconds)
        assert verdict.status == "degraded" and verdict.alive == []
        # Nor is one whose beats stopped (its writer is gone), whatever it said last.
        gone = polled.model_copy(
            update={"written_at": NOW - timedelta(seconds=3 * beat_seconds + 0.5)}
        )
        assert assess(WAITING, [gone], "jobs", NOW, beat_seconds=beat_seconds).alive == []
