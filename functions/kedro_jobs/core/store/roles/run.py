"""What a run needs of the jobs table: the consumer's deliveries and a task backend's task."""

from __future__ import annotations

from kedro_jobs.core.store.claims import Claims
from kedro_jobs.core.store.delivery import Dispatches
from kedro_jobs.core.store.jobs import Jobs
from kedro_jobs.core.store.runs import Runs


class RunJobs(Jobs, Claims, Runs, Dispatches):
    """Claim a job (``claim``, ``create_claimed`` for a message from another system,
    ``fail_pending`` for one that cannot be read), the claimed run's fenced writes
    (``heartbeat``, ``report_progress``, ``hand_off``, ``finish``), a task backend's dispatch
    marks (``mark_dispatched``, ``dispatched``), and ``create`` / ``fail`` of a job a task
    backend's message makes or cannot run."""
