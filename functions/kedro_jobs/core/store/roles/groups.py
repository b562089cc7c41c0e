"""What a fanned-out job's groups need of the jobs table (docs/fan-out.md)."""

from __future__ import annotations

from kedro_jobs.core.store.groups import Groups
from kedro_jobs.core.store.task_errors import TaskErrorNotes


class GroupJobs(Groups, TaskErrorNotes):
    """Start the fan-out (``start_fan_out``), claim a group (``claim_group``), its progress
    and heartbeat (``group_beat``), its end (``end_group``), a dead worker's group taken
    over (``take_over_group``), a group passed from one claim to another (``pass_group``: a
    task backend's task taking the claim its dispatching consumer made), the commit's hold
    on the job (``hold_for_commit``), and why a message of the execution last failed
    (``note_task_error``)."""
