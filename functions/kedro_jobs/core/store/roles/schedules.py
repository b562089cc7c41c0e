"""What the consumer's overlap policy needs of the jobs table for a schedule's fires."""

from __future__ import annotations

from kedro_jobs.core.store.schedule_runs import Fires, ScheduleRuns


class ScheduleJobs(ScheduleRuns, Fires):
    """A schedule's newest runs (``schedule_runs``), and a fire's job made once
    (``create_if_new``), skipped (``skip``) or left waiting (``defer``)."""
