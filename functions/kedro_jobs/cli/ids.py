"""Job ids as the user types them: the full id, or the short prefix the web page and a narrow
`kedro-jobs list` show (8 characters). A prefix is looked up among the user's latest jobs (the
API gets jobs by full id only, and lists them newest first)."""

from __future__ import annotations

from kedro_jobs.cli.client import Api
from kedro_jobs.cli.params import UsageError

FULL_ID_LENGTH = 36  # a UUID, as the API makes them
MIN_PREFIX = 4
SEARCH_PAGES = 10  # of 100: a prefix is found among the latest 1000 jobs


def resolve(api: Api, given: str) -> str:
    """The one job id that starts with ``given``; UsageError if none does or several do."""
    if len(given) >= FULL_ID_LENGTH:
        return given
    if len(given) < MIN_PREFIX:
        raise UsageError(f"job id {given!r} is too short: give at least {MIN_PREFIX} characters")
    matches: list[str] = []
    cursor: str | None = None
    for _ in range(SEARCH_PAGES):
        page = api.jobs(limit=100, cursor=cursor)
        matches += [job["id"] for job in page["jobs"] if str(job["id"]).startswith(given)]
        cursor = page.get("next_cursor")
        if len(matches) > 1 or not cursor:
            break
    if not matches:
        # Not a prefix of a recent job: perhaps a full id of another form; the API says.
        return given
    if len(matches) > 1:
        shown = ", ".join(matches[:5])
        raise UsageError(f"job id prefix {given!r} is ambiguous: it starts {shown}; give more")
    return matches[0]


def short(job_id: str) -> str:
    return job_id[:8]
