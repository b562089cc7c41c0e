"""What the sweeper and the dead-letter function need of the jobs table."""

from __future__ import annotations

from kedro_jobs.core.store.delivery import Sweeps
from kedro_jobs.core.store.fencing import Abandoned
from kedro_jobs.core.store.jobs import Jobs
from kedro_jobs.core.store.task_errors import TaskErrorReads


class SweepJobs(Jobs, Sweeps, Abandoned, TaskErrorReads):
    """The live jobs overdue (``stranded``, ``count_live``), the sweeper's writes to them
    (``mark_looked``, ``fail_stranded``, and the endings of a run whose worker is gone:
    ``fail_exhausted``, ``cancel_abandoned``), and ``fail`` for the dead-letter function's
    job (with ``create``, the writes every role shares), and ``task_error``: why a
    dead-lettered fan-out message last failed."""

    fail_exhausted = Abandoned._fail_exhausted
    cancel_abandoned = Abandoned._cancel_abandoned
