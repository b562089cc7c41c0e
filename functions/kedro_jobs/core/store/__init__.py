"""The DynamoDB job store (see job_store.py for its parts)."""

from kedro_jobs.core.store.claims import Claim, ClaimOutcome
from kedro_jobs.core.store.delivery import Stranded
from kedro_jobs.core.store.items import from_item, to_item
from kedro_jobs.core.store.job_store import JobStore
from kedro_jobs.core.store.listing import decode_cursor, encode_cursor

__all__ = [
    "Claim",
    "ClaimOutcome",
    "JobStore",
    "Stranded",
    "decode_cursor",
    "encode_cursor",
    "from_item",
    "to_item",
]
