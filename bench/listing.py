"""Listing at scale: `GET /api/v1/jobs?limit=20` with 1,000 and with 50,000 items in the
table. Listings are Queries on an index, so the ratio should stay near 1."""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any


def _fill(ddb: Any, table: str, count: int, start_index: int) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    batch: list[dict[str, Any]] = []
    for i in range(start_index, start_index + count):
        user = "bench-user" if i % 10 == 0 else f"user-{i % 97}"
        created = (base + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        batch.append(
            {
                "PutRequest": {
                    "Item": {
                        "id": {"S": str(uuid.uuid4())},
                        "pipeline_name": {"S": "hello"},
                        "user_id": {"S": user},
                        "status": {"S": "completed"},
                        "created_at": {"S": created},
                        "user_status": {"S": f"{user}#completed"},
                        "user_pipeline": {"S": f"{user}#hello"},
                        "parameters": {"S": "{}"},
                        "options": {"S": "{}"},
                        "attempts": {"N": "1"},
                    }
                }
            }
        )
        if len(batch) == 25:
            ddb.batch_write_item(RequestItems={table: batch})
            batch = []
    if batch:
        ddb.batch_write_item(RequestItems={table: batch})


class _DynamoDBMeter:
    """Time spent waiting on DynamoDB (the index Query and the read of the page's jobs by
    key), and the items the Queries examined (ScannedCount): what AWS bills a listing for,
    independent of the emulator's own speed."""

    def __init__(self, client: Any) -> None:
        self.wait = 0.0
        self.scanned = 0
        self._sent = 0.0
        client.meta.events.register("before-send.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def _before(self, **_: Any) -> None:
        self._sent = time.perf_counter()

    def _after(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        self.wait += time.perf_counter() - self._sent
        if model.name == "Query":
            self.scanned += int(parsed.get("ScannedCount", 0))


def _time_listing(call: Any, meter: _DynamoDBMeter, rounds: int) -> dict[str, float]:
    totals, own, scanned = [], [], []
    for _ in range(rounds):
        meter.wait, meter.scanned = 0.0, 0
        start = time.perf_counter()
        call()
        total = time.perf_counter() - start
        totals.append(total)
        own.append(total - meter.wait)
        scanned.append(meter.scanned)
    return {
        "median_ms": statistics.median(totals) * 1000,
        "median_ms_excluding_dynamodb": statistics.median(own) * 1000,
        "items_examined": statistics.median(scanned),
    }


def measure(
    table: str, sizes: tuple[int, int] = (1_000, 50_000), rounds: int = 30
) -> dict[str, Any]:
    import boto3

    from kedro_jobs.api import handler as api
    from kedro_jobs.api.services import Services
    from kedro_jobs.core.settings import get_settings
    from kedro_jobs_local.lambda_context import LocalContext
    from kedro_jobs_local.lambda_events import http_api_event, response_json

    get_settings.cache_clear()
    api.app.state.services = Services(get_settings())
    ddb = boto3.client("dynamodb")
    event = http_api_event(
        "GET", "/api/v1/jobs", query={"limit": "20"}, claims={"sub": "bench-user"}
    )

    def listing() -> None:
        response = api.handler(event, LocalContext(29, "ApiFunction"))
        assert response["statusCode"] == 200 and len(response_json(response)["jobs"]) == 20

    meter = _DynamoDBMeter(api.app.state.services.store.client)
    results: dict[str, Any] = {"sizes": list(sizes)}
    filled = 0
    for size in sizes:
        _fill(ddb, table, size - filled, filled)
        filled = size
        listing()
        results[str(size)] = _time_listing(listing, meter, rounds)
    small, large = (results[str(n)] for n in sizes)
    results["ratio_items_examined"] = large["items_examined"] / small["items_examined"]
    results["ratio_excluding_dynamodb"] = (
        large["median_ms_excluding_dynamodb"] / small["median_ms_excluding_dynamodb"]
    )
    results["ratio_wall_time_on_moto"] = large["median_ms"] / small["median_ms"]
    return results
