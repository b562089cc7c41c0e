"""What a fanned-out job's groups need of the jobs table (docs/fan-out.md)."""

from __future__ import annotations

from kedro_jobs.core.store.groups import Groups


class GroupJobs(Groups):
    """Start the fan-out (``start_fan_out``), claim a group (``claim_group``), its progress
    (``group_progress``) and its end (``end_group``)."""
