"""The DynamoDB job store: its roles (roles/, one per kind of caller) and ``JobStore``, all of
them at once (job_store.py, for callers not yet moved to their role)."""

from kedro_jobs.core.store.claims import Claim, ClaimOutcome
from kedro_jobs.core.store.delivery import Stranded
from kedro_jobs.core.store.items import from_item, to_item
from kedro_jobs.core.store.job_store import JobStore
from kedro_jobs.core.store.listing import decode_cursor, encode_cursor
from kedro_jobs.core.store.roles.api import ApiJobs
from kedro_jobs.core.store.roles.groups import GroupJobs
from kedro_jobs.core.store.roles.run import RunJobs
from kedro_jobs.core.store.roles.schedules import ScheduleJobs
from kedro_jobs.core.store.roles.sweep import SweepJobs

__all__ = [
    "ApiJobs",
    "Claim",
    "ClaimOutcome",
    "GroupJobs",
    "JobStore",
    "RunJobs",
    "ScheduleJobs",
    "Stranded",
    "SweepJobs",
    "decode_cursor",
    "encode_cursor",
    "from_item",
    "to_item",
]
