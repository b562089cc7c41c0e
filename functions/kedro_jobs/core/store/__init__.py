"""The DynamoDB job store: its roles (roles/, one per kind of caller), each over the one
table."""

from kedro_jobs.core.store.claims import Claim, ClaimOutcome
from kedro_jobs.core.store.delivery import Stranded
from kedro_jobs.core.store.items import from_item, to_item
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
    "RunJobs",
    "ScheduleJobs",
    "Stranded",
    "SweepJobs",
    "decode_cursor",
    "encode_cursor",
    "from_item",
    "to_item",
]
