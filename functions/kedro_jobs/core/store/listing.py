"""One user's jobs, newest first: a Query on a keys-only GSI (never a Scan), then one
BatchGetItem of the page's jobs, so a listing's cost does not grow with the table; and the
cursor that carries a listing on to its next page."""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from kedro_jobs.core.aws import aws_errors
from kedro_jobs.core.errors import DependencyUnavailable, InvalidCursor
from kedro_jobs.core.models import Job, JobPage
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store.expressions import Placeholders, eq, is_status
from kedro_jobs.core.store.items import (
    AttributeValue,
    from_item,
    key,
    pipeline_key,
    schedule_key,
    status_key,
)
from kedro_jobs.core.store.table import DEPENDENCY, Table

# The listing indexes (keys only), by their hash attribute.
_INDEX_BY_USER = "by_user"
_INDEX_BY_STATUS = "by_user_status"
_INDEX_BY_PIPELINE = "by_user_pipeline"
_INDEX_BY_SCHEDULE = "by_user_schedule"  # sparse: only a schedule's runs are in it
_INDEX_HASH = {
    _INDEX_BY_USER: "user_id",
    _INDEX_BY_STATUS: "user_status",
    _INDEX_BY_PIPELINE: "user_pipeline",
    _INDEX_BY_SCHEDULE: "user_schedule",
}
# A filtered listing (status and pipeline together) reads at most this many index pages per
# request, then hands back a cursor: the request's cost stays bounded.
_MAX_PAGES_PER_LISTING = 5
_BATCH_GET_MAX = 100  # keys per BatchGetItem
_BATCH_GET_RETRIES = 4


def encode_cursor(key: dict[str, Any]) -> str:
    """The index key a page ended at (its attributes are all strings), for a URL."""
    plain = {name: attr["S"] for name, attr in key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, hash_attr: str, hash_value: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        plain = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, RecursionError) as exc:  # RecursionError: `[[[...`
        raise InvalidCursor from exc
    expected = {"id", "created_at", hash_attr}
    if (
        not isinstance(plain, dict)
        or set(plain) != expected
        or not all(isinstance(v, str) and 0 < len(v) <= 1024 for v in plain.values())
        or plain[hash_attr] != hash_value
    ):
        raise InvalidCursor
    return {name: {"S": value} for name, value in plain.items()}


def _index(
    user_id: str, status: JobStatus | None, pipeline_name: str | None, schedule: str | None
) -> tuple[str, str]:
    """The index a listing reads, and its hash key's value."""
    if schedule is not None:
        return _INDEX_BY_SCHEDULE, schedule_key(user_id, schedule)
    if pipeline_name is not None:
        return _INDEX_BY_PIPELINE, pipeline_key(user_id, pipeline_name)
    if status is not None:
        return _INDEX_BY_STATUS, status_key(user_id, status)
    return _INDEX_BY_USER, user_id


class Listing(Table):
    def list_jobs(
        self,
        user_id: str,
        *,
        status: JobStatus | None = None,
        pipeline_name: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
        schedule: str | None = None,
    ) -> JobPage:
        """Newest first, one user's jobs, optionally by status and/or pipeline, or a
        schedule's runs (optionally by status and/or pipeline)."""
        index, hash_value = _index(user_id, status, pipeline_name, schedule)
        hash_attr = _INDEX_HASH[index]
        start = (
            decode_cursor(cursor, hash_attr=hash_attr, hash_value=hash_value) if cursor else None
        )
        placeholders = Placeholders()
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": eq(hash_attr, hash_value).render(placeholders),
            "ScanIndexForward": False,
            # One extra item tells whether another page exists without an empty last page.
            "Limit": limit + 1,
        }
        if index == _INDEX_BY_SCHEDULE:  # the index holds both attributes
            filters = [is_status(status)] if status is not None else []
            if pipeline_name is not None:
                filters.append(eq("pipeline_name", pipeline_name))
            if filters:
                combined = filters[0] if len(filters) == 1 else filters[0] & filters[1]
                query["FilterExpression"] = combined.render(placeholders)
        elif pipeline_name is not None and status is not None:  # by pipeline, then status
            query["FilterExpression"] = is_status(status).render(placeholders)
        query["ExpressionAttributeNames"] = placeholders.names
        query["ExpressionAttributeValues"] = placeholders.values
        collected: list[dict[str, AttributeValue]] = []
        for _ in range(_MAX_PAGES_PER_LISTING):
            if start:
                query["ExclusiveStartKey"] = start
            with aws_errors(DEPENDENCY):
                resp = self.client.query(**query)
            collected.extend(resp.get("Items", []))
            if len(collected) > limit:
                last = collected[limit - 1]
                end = {a: last[a] for a in ("id", "created_at", hash_attr)}
                return JobPage(jobs=self._read(collected[:limit]), next_cursor=encode_cursor(end))
            start = resp.get("LastEvaluatedKey")
            if not start:
                return JobPage(jobs=self._read(collected), next_cursor=None)
        # Page budget spent: hand back where the scan of the index stopped.
        return JobPage(jobs=self._read(collected), next_cursor=encode_cursor(start or {}))

    def _read(self, index_items: list[dict[str, AttributeValue]]) -> list[Job]:
        """The jobs an index page names, read by key (the indexes hold keys only, so a
        progress write touches no index), in the page's order. A job deleted meanwhile (its
        TTL) is left out."""
        ids = [item["id"]["S"] for item in index_items]
        keys = [key(job_id) for job_id in dict.fromkeys(ids)]
        found: dict[str, dict[str, AttributeValue]] = {}
        left_over = 0
        while keys:
            if left_over:  # DynamoDB left keys unread: it is throttling
                if left_over > _BATCH_GET_RETRIES:
                    raise DependencyUnavailable(DEPENDENCY, "reads left unprocessed (throttled)")
                time.sleep(0.05 * 2**left_over)
            batch, keys = keys[:_BATCH_GET_MAX], keys[_BATCH_GET_MAX:]
            with aws_errors(DEPENDENCY):
                resp = self.client.batch_get_item(
                    RequestItems={self.table_name: {"Keys": batch, "ConsistentRead": True}}
                )
            for item in resp.get("Responses", {}).get(self.table_name, []):
                found[item["id"]["S"]] = item
            unread = resp.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
            left_over = left_over + 1 if unread else 0
            keys = unread + keys
        # Lenient: one damaged item never fails a listing; it shows what can be read.
        return [from_item(found[job_id], lenient=True) for job_id in ids if job_id in found]
