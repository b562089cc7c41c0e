"""EventBridge Scheduler's expressions (``cron(...)``, ``rate(...)``, ``at(...)``) and when
they fire, in the schedule's time zone. The API shows a schedule's next fire times with this,
and the local stack fires schedules with it (AWS fires them itself).

Cron fields are EventBridge's, not Unix's: six of them (minutes hours day-of-month month
day-of-week year), one of day-of-month and day-of-week is ``?``, and day-of-week counts 1-7
from SUNDAY. croniter evaluates the first five once translated (its day-of-week counts 0-6
from Sunday); the year field is filtered here. Daylight saving time as EventBridge Scheduler
handles it: a local time that does not exist (clocks go forward) is skipped, and a local time
that happens twice (clocks go back) fires once, the first time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

Kind = Literal["cron", "rate", "at"]

_CRON = re.compile(r"^cron\((.*)\)$")
_RATE = re.compile(r"^rate\((\d{1,6}) (minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_YEAR_PART = re.compile(r"^(\*|\d{4})(?:-(\d{4}))?(?:/(\d{1,3}))?$")
_DOW_NUMBER = re.compile(r"\d+")
# How far ahead a cron is searched for its next fire (a year field may leave none).
_MAX_CANDIDATES = 10_000


class InvalidExpression(ValueError):
    """The expression or time zone is not one EventBridge Scheduler accepts; says why."""


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``Europe/Paris``, ``UTC``)."""
    if not name or name.startswith(("/", ".")) or ".." in name:
        raise InvalidExpression(f"unknown time zone {name!r}: use an IANA name like Europe/Paris")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidExpression(
            f"unknown time zone {name!r}: use an IANA name like Europe/Paris"
        ) from exc


def _dow(field: str) -> str:
    """EventBridge's day-of-week (1-7 = SUN-SAT, ``6L``: the month's last Friday) in
    croniter's spelling (0-6 = SUN-SAT, ``L5``)."""
    if field in ("?", "*"):
        return "*"
    if field == "L":  # on its own, the last day of the week: Saturday
        return "6"
    last = re.fullmatch(r"(\d)L", field)
    if last:
        return f"L{int(last.group(1)) - 1}"

    def shift(match: re.Match[str]) -> str:
        number = int(match.group(0))
        if not 1 <= number <= 7:
            raise InvalidExpression(f"day-of-week {number} is not 1-7 (1 is SUN, 7 is SAT)")
        return str(number - 1)

    head, sep, nth = field.partition("#")  # "6#3": the third Friday; the 3 is not a day
    return _DOW_NUMBER.sub(shift, head) + sep + nth


def _years(field: str) -> tuple[int, int, set[int] | None]:
    """The year field as (first, last, the years, or None for all of them)."""
    if field == "*":
        return 1970, 2199, None
    years: set[int] = set()
    for part in field.split(","):
        match = _YEAR_PART.match(part)
        if not match:
            raise InvalidExpression(f"year field {field!r} is not valid (e.g. *, 2027, 2026-2030)")
        start_text, end_text, step_text = match.groups()
        start = 1970 if start_text == "*" else int(start_text)
        end = int(end_text) if end_text else (2199 if start_text == "*" or step_text else start)
        if not 1970 <= start <= end <= 2199:
            raise InvalidExpression(f"year field {field!r}: years are 1970-2199")
        years.update(range(start, end + 1, int(step_text or 1)))
    return min(years), max(years), years


@dataclass(frozen=True)
class Expression:
    """A parsed schedule expression."""

    kind: Kind
    text: str
    cron: str = ""  # croniter's five fields
    years: frozenset[int] | None = None  # cron: the years it may fire in (None: any)
    last_year: int = 2199
    every: timedelta = timedelta(0)  # rate
    at: datetime | None = None  # at: the local wall time (naive)


def parse(text: str) -> Expression:
    """The expression, or InvalidExpression saying what is wrong with it."""
    text = text.strip()
    if match := _RATE.match(text):
        value, unit = int(match.group(1)), match.group(2).rstrip("s")
        if value < 1:
            raise InvalidExpression("rate(): the value must be a positive whole number")
        return Expression("rate", text, every=timedelta(seconds=value * _UNIT_SECONDS[unit]))
    if match := _AT.match(text):
        try:
            when = datetime.fromisoformat(match.group(1))
        except ValueError as exc:
            raise InvalidExpression(f"at(): {match.group(1)} is not a real date and time") from exc
        return Expression("at", text, at=when)
    if match := _CRON.match(text):
        return _parse_cron(text, match.group(1))
    raise InvalidExpression(
        "expression must be cron(minutes hours day-of-month month day-of-week year), "
        "rate(value minutes|hours|days) or at(yyyy-mm-ddThh:mm:ss)"
    )


def _parse_cron(text: str, body: str) -> Expression:
    fields = body.split()
    if len(fields) != 6:
        raise InvalidExpression(
            f"cron() takes 6 fields (minutes hours day-of-month month day-of-week year); "
            f"{text} has {len(fields)}"
        )
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise InvalidExpression(
            "cron(): exactly one of day-of-month and day-of-week must be '?' "
            "(e.g. cron(0 2 * * ? *) or cron(0 2 ? * MON-FRI *))"
        )
    if "?" in (minutes, hours, month, year):
        raise InvalidExpression("cron(): '?' is only for day-of-month or day-of-week")
    _first, last, years = _years(year)
    five = " ".join((minutes, hours, "*" if dom == "?" else dom, month, _dow(dow)))
    try:
        croniter(five, datetime(2026, 1, 1))
    except (CroniterError, ValueError, KeyError) as exc:
        raise InvalidExpression(f"{text} is not a valid cron expression: {exc}") from exc
    return Expression(
        "cron",
        text,
        cron=five,
        years=None if years is None else frozenset(years),
        last_year=last,
    )


def _local(wall: datetime, tz: ZoneInfo) -> datetime | None:
    """The instant of local wall time ``wall`` in ``tz``: None if it does not exist (the
    clocks went forward over it); its first occurrence if it happens twice."""
    aware = wall.replace(tzinfo=tz, fold=0)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wall:
        return None
    return aware


def _cron_after(expr: Expression, tz: ZoneInfo, after: datetime) -> datetime | None:
    """The first fire strictly after ``after`` (aware), or None if there is none."""
    # croniter walks local wall times (naive), so a wall time that happens twice is one
    # candidate: it fires once.
    start = after.astimezone(tz).replace(tzinfo=None, fold=0)
    walker = croniter(expr.cron, start)
    for _ in range(_MAX_CANDIDATES):
        wall: datetime = walker.get_next(datetime)
        if wall.year > expr.last_year:
            return None
        if expr.years is not None and wall.year not in expr.years:
            later = [year for year in expr.years if year > wall.year]
            if not later:
                return None
            # On to the next year it may fire in, not minute by minute through the others.
            walker = croniter(expr.cron, datetime(min(later), 1, 1) - timedelta(seconds=1))
            continue
        instant = _local(wall, tz)
        if instant is not None and instant > after:
            return instant.astimezone(UTC)
    return None


def next_fires(
    expr: Expression, tz: ZoneInfo, *, after: datetime, count: int, anchor: datetime
) -> list[datetime]:
    """The next ``count`` fire times (UTC) strictly after ``after``. ``anchor``: when a rate
    schedule started (it fires then, and every interval after)."""
    if expr.kind == "at":
        assert expr.at is not None
        instant = _local(expr.at, tz) or expr.at.replace(tzinfo=tz)
        return [instant.astimezone(UTC)] if instant > after else []
    if expr.kind == "rate":
        first = anchor.astimezone(UTC)
        k = 0 if first > after else int((after - first) // expr.every) + 1
        return [first + (k + i) * expr.every for i in range(count)]
    fires: list[datetime] = []
    cursor = after
    while len(fires) < count:
        fire = _cron_after(expr, tz, cursor)
        if fire is None:
            break
        fires.append(fire)
        cursor = fire
    return fires


def fires_between(
    expr: Expression, tz: ZoneInfo, *, start: datetime, end: datetime, anchor: datetime
) -> list[datetime]:
    """Every fire time in (start, end], oldest first (at most 100: a firer that fell far
    behind fires the latest ones, not a backlog without end)."""
    fires: list[datetime] = []
    cursor = start
    while len(fires) < 10_000:
        batch = next_fires(expr, tz, after=cursor, count=10, anchor=anchor)
        due = [fire for fire in batch if fire <= end]
        fires.extend(due)
        if len(due) < len(batch) or not batch:
            return fires[-100:]
        cursor = due[-1]
    return fires[-100:]
