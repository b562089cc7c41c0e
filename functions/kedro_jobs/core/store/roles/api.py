"""What the API needs of the jobs table."""

from __future__ import annotations

from kedro_jobs.core.store.jobs import Jobs, UserJobs
from kedro_jobs.core.store.listing import Listing
from kedro_jobs.core.store.schedule_runs import ScheduleRuns


class ApiJobs(Jobs, UserJobs, Listing, ScheduleRuns):
    """Submit (``create``; ``fail`` a job whose message could not be sent), a user's jobs
    (``get_for_user``, ``list_jobs``, ``request_cancel``), a schedule's newest runs
    (``schedule_runs``) and the table's health (``ping``)."""
