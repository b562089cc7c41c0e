"""The job store: every transition is a conditional write on the expected state.

One class for its callers, made of its parts: jobs.py (create, read, fail, cancel),
listing.py (a user's jobs by index), claims.py (claiming a run), runs.py (the claimed run's
fenced writes), delivery.py (the sweeper's index, the dispatch marks) and schedule_runs.py
(a schedule's runs), all writing through table.py with items built by items.py."""

from __future__ import annotations

from kedro_jobs.core.store.claims import Claims
from kedro_jobs.core.store.delivery import Delivery
from kedro_jobs.core.store.groups import Groups
from kedro_jobs.core.store.jobs import Jobs
from kedro_jobs.core.store.listing import Listing
from kedro_jobs.core.store.schedule_runs import ScheduleRuns


class JobStore(Jobs, Claims, Listing, Delivery, ScheduleRuns, Groups):
    """Jobs in one DynamoDB table. The client is injected, or created on first use."""
