"""EventBridge Scheduler's expressions: the examples of its documentation, its day-of-week
numbering (1 is SUNDAY), and daylight saving time as Scheduler handles it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kedro_jobs.core.schedule_times import (
    InvalidExpression,
    fires_between,
    next_fires,
    parse,
    zone,
)

# Friday 2026-11-27 00:00 UTC.
FRIDAY = datetime(2026, 11, 27, tzinfo=UTC)


def fires(
    expression: str, *, tz: str = "UTC", after: datetime = FRIDAY, count: int = 5
) -> list[str]:
    got = next_fires(parse(expression), zone(tz), after=after, count=count, anchor=after)
    return [fire.strftime("%a %Y-%m-%d %H:%M") for fire in got]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # The examples of EventBridge's cron documentation, each with what it says it does.
        ("cron(0 10 * * ? *)", ["Fri 2026-11-27 10:00", "Sat 2026-11-28 10:00"]),  # 10:00 daily
        ("cron(15 12 * * ? *)", ["Fri 2026-11-27 12:15", "Sat 2026-11-28 12:15"]),  # 12:15 daily
        # 6:00 PM Monday through Friday
        ("cron(0 18 ? * MON-FRI *)", ["Fri 2026-11-27 18:00", "Mon 2026-11-30 18:00"]),
        ("cron(0 8 1 * ? *)", ["Tue 2026-12-01 08:00", "Fri 2027-01-01 08:00"]),  # 8:00, the 1st
        ("cron(0/15 * * * ? *)", ["Fri 2026-11-27 00:15", "Fri 2026-11-27 00:30"]),  # every 15 min
        # Every 10 minutes, Monday through Friday
        ("cron(0/10 * ? * MON-FRI *)", ["Fri 2026-11-27 00:10", "Fri 2026-11-27 00:20"]),
        # Every 5 minutes between 8:00 AM and 5:55 PM, Monday through Friday
        ("cron(0/5 8-17 ? * MON-FRI *)", ["Fri 2026-11-27 08:00", "Fri 2026-11-27 08:05"]),
        # 9:00 AM on the first Monday of each month (day 2 is MONDAY: 1 is SUNDAY)
        ("cron(0 9 ? * 2#1 *)", ["Mon 2026-12-07 09:00", "Mon 2027-01-04 09:00"]),
        # Numbered days: 1 is SUNDAY and 7 is SATURDAY, unlike Unix cron's 0-6
        ("cron(0 6 ? * 1 *)", ["Sun 2026-11-29 06:00", "Sun 2026-12-06 06:00"]),
        ("cron(0 6 ? * 7 *)", ["Sat 2026-11-28 06:00", "Sat 2026-12-05 06:00"]),
        ("cron(0 6 ? * 2-6 *)", ["Fri 2026-11-27 06:00", "Mon 2026-11-30 06:00"]),  # MON-FRI
        # L: the month's last day; 6L: its last Friday; W: the weekday nearest the 1st
        ("cron(0 0 L * ? *)", ["Mon 2026-11-30 00:00", "Thu 2026-12-31 00:00"]),
        ("cron(0 12 ? * 6L *)", ["Fri 2026-11-27 12:00", "Fri 2026-12-25 12:00"]),
        ("cron(0 7 1W * ? *)", ["Tue 2026-12-01 07:00", "Fri 2027-01-01 07:00"]),
        # The year field
        ("cron(0 0 1 1 ? 2028)", ["Sat 2028-01-01 00:00"]),
        ("cron(0 0 1 1 ? 2027-2028)", ["Fri 2027-01-01 00:00", "Sat 2028-01-01 00:00"]),
        ("cron(0 0 1 1 ? 2020)", []),  # only in the past: never fires again
    ],
)
def test_eventbridge_cron_examples(expression: str, expected: list[str]) -> None:
    assert fires(expression, count=len(expected) or 1)[: len(expected)] == expected
    if not expected:
        assert fires(expression) == []


def test_cron_in_a_time_zone_follows_its_clock_across_dst() -> None:
    # Paris moves from UTC+1 to UTC+2 on 2026-03-29: 09:00 local is 08:00, then 07:00 UTC.
    got = fires("cron(0 9 * * ? *)", tz="Europe/Paris", after=datetime(2026, 3, 27, tzinfo=UTC))
    assert got == [
        "Fri 2026-03-27 08:00",
        "Sat 2026-03-28 08:00",
        "Sun 2026-03-29 07:00",
        "Mon 2026-03-30 07:00",
        "Tue 2026-03-31 07:00",
    ]


def test_a_local_time_the_clocks_skip_does_not_fire() -> None:
    # 02:30 does not exist in Paris on 2026-03-29 (02:00 -> 03:00): Scheduler skips it.
    got = fires("cron(30 2 * * ? *)", tz="Europe/Paris", after=datetime(2026, 3, 27, tzinfo=UTC))
    assert got[:3] == ["Fri 2026-03-27 01:30", "Sat 2026-03-28 01:30", "Mon 2026-03-30 00:30"]


def test_a_local_time_that_happens_twice_fires_once() -> None:
    # 02:30 happens twice in Paris on 2026-10-25 (03:00 -> 02:00): Scheduler runs it once.
    got = fires("cron(30 2 * * ? *)", tz="Europe/Paris", after=datetime(2026, 10, 23, tzinfo=UTC))
    assert got[:3] == ["Fri 2026-10-23 00:30", "Sat 2026-10-24 00:30", "Sun 2026-10-25 00:30"]
    assert got[3] == "Mon 2026-10-26 01:30"


def test_a_us_time_zone_changes_on_its_own_date() -> None:
    # New York leaves DST on 2026-11-01: 06:00 local is 10:00 UTC, then 11:00 UTC.
    got = fires(
        "cron(0 6 * * ? *)", tz="America/New_York", after=datetime(2026, 10, 31, tzinfo=UTC)
    )
    assert got[:2] == ["Sat 2026-10-31 10:00", "Sun 2026-11-01 11:00"]


def test_rate_fires_from_its_start_every_interval() -> None:
    start = datetime(2026, 11, 27, 10, 0, 30, tzinfo=UTC)
    expr = parse("rate(1 minute)")
    got = next_fires(expr, UTC_ZONE, after=start + timedelta(seconds=45), count=3, anchor=start)
    assert got == [start + timedelta(minutes=m) for m in (1, 2, 3)]
    assert parse("rate(2 hours)").every == timedelta(hours=2)
    assert parse("rate(1 day)").every == timedelta(days=1)


UTC_ZONE = zone("UTC")


def test_at_fires_once_in_its_time_zone() -> None:
    expr = parse("at(2026-12-24T18:00:00)")
    paris = zone("Europe/Paris")
    assert next_fires(expr, paris, after=FRIDAY, count=5, anchor=FRIDAY) == [
        datetime(2026, 12, 24, 17, 0, tzinfo=UTC)
    ]
    assert (
        next_fires(expr, paris, after=datetime(2027, 1, 1, tzinfo=UTC), count=5, anchor=FRIDAY)
        == []
    )


def test_fires_between_is_every_fire_in_the_window() -> None:
    start = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    got = fires_between(
        parse("rate(1 minute)"),
        UTC_ZONE,
        start=start,
        end=start + timedelta(minutes=3),
        anchor=start,
    )
    assert got == [start + timedelta(minutes=m) for m in (1, 2, 3)]


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("cron(0 2 * * *)", "6 fields"),  # Unix's five
        ("cron(0 2 * * * *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 2 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 2 ? * 8 *)", "day-of-week 8 is not 1-7"),
        ("cron(61 2 * * ? *)", "not a valid cron expression"),
        ("cron(0 2 * * ? 1800)", "years are 1970-2199"),
        ("rate(0 minutes)", "positive"),
        ("rate(5 seconds)", "expression must be cron("),
        ("at(2026-02-30T10:00:00)", "not a real date"),
        ("every day", "expression must be cron("),
    ],
)
def test_invalid_expressions_say_what_is_wrong(expression: str, says: str) -> None:
    with pytest.raises(InvalidExpression, match=says.replace("(", r"\(").replace("?", r"\?")):
        parse(expression)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd", "/etc/localtime"])
def test_unknown_time_zones_are_refused(name: str) -> None:
    with pytest.raises(InvalidExpression, match="unknown time zone"):
        zone(name)
