"""The job store as it was before its roles: one object with every method. Nothing in this
repository uses it: it is kept only for work on other branches that still imports it, and
goes once that has moved to a role (docs/store.md). New code takes its role (roles/): the
API ``ApiJobs``, a run ``RunJobs``, the sweeper and the dead-letter function ``SweepJobs``,
the overlap policy ``ScheduleJobs``, fan-out ``GroupJobs``. ``JobStore`` hands them out
over its own table (``.api``, ``.runs``, ``.sweeps``, ``.schedules``, ``.groups``).

Every transition is a conditional write on the expected state; the parts: jobs.py (create,
fail; read and cancel as a user), listing.py (a user's jobs by index), claims.py (claiming a
run), runs.py (the claimed run's fenced writes), fencing.py (the fence, and the endings of a
run whose worker is gone), delivery.py (the sweeper's index, the dispatch marks),
schedule_runs.py (a schedule's runs) and groups.py (fan-out), all writing through table.py
with items built by items.py."""

from __future__ import annotations

from kedro_jobs.core.store.roles.api import ApiJobs
from kedro_jobs.core.store.roles.groups import GroupJobs
from kedro_jobs.core.store.roles.run import RunJobs
from kedro_jobs.core.store.roles.schedules import ScheduleJobs
from kedro_jobs.core.store.roles.sweep import SweepJobs


class JobStore(ApiJobs, RunJobs, SweepJobs, ScheduleJobs, GroupJobs):
    """Jobs in one DynamoDB table, every role at once. The client is injected, or created
    on first use."""

    @property
    def api(self) -> ApiJobs:
        return ApiJobs.over(self)

    @property
    def runs(self) -> RunJobs:
        return RunJobs.over(self)

    @property
    def sweeps(self) -> SweepJobs:
        return SweepJobs.over(self)

    @property
    def schedules(self) -> ScheduleJobs:
        return ScheduleJobs.over(self)

    @property
    def groups(self) -> GroupJobs:
        return GroupJobs.over(self)
