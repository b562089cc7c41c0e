"""End-to-end: trivial jobs through `make dev` (the local stack over HTTP), with 1 and then
2 consumers: jobs per second, and p50/p95 from submit to completed (server timestamps)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx

from bench.dev import start_dev
from kedro_jobs.core.states import TERMINAL

FINISHED = {str(status) for status in TERMINAL}  # as the API writes them


def _seconds(record: dict[str, Any], start: str, end: str) -> float:
    parse = datetime.fromisoformat
    return (parse(record[end]) - parse(record[start])).total_seconds()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wait_healthy(client: httpx.Client, timeout: float = 120) -> None:
    """Until `make dev` answers /health with 200 (the client's base URL is the API's)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.get("/health").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("make dev did not start")
        time.sleep(0.2)


def run_once(workers: int, jobs: int) -> dict[str, Any]:
    dev, api = start_dev(workers=workers)
    try:
        with httpx.Client(base_url=api, timeout=30) as client:
            wait_healthy(client)
            # One job first, so every consumer has finished its warm-up.
            warm = client.post("/jobs", json={"pipeline_name": "hello"}).json()["id"]
            while client.get(f"/jobs/{warm}").json()["status"] != "completed":
                time.sleep(0.1)
            time.sleep(3)
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=8) as pool:
                ids = list(
                    pool.map(
                        lambda _: client.post("/jobs", json={"pipeline_name": "hello"}).json()[
                            "id"
                        ],
                        range(jobs),
                    )
                )
            records: dict[str, dict[str, Any]] = {}
            while len(records) < jobs and time.monotonic() - started < 600:
                for job_id in ids:
                    if job_id not in records:
                        record = client.get(f"/jobs/{job_id}").json()
                        if record["status"] in FINISHED:
                            records[job_id] = record
                time.sleep(0.2)
        latencies = [_seconds(r, "created_at", "completed_at") for r in records.values()]
        first = min(r["created_at"] for r in records.values())
        last = max(r["completed_at"] for r in records.values())
        span = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()
        return {
            "consumers": workers,
            "jobs": jobs,
            "completed": sum(r["status"] == "completed" for r in records.values()),
            "jobs_per_second": jobs / span,
            "p50_submit_to_completed_s": _percentile(latencies, 0.5),
            "p95_submit_to_completed_s": _percentile(latencies, 0.95),
        }
    finally:
        dev.terminate()
        dev.wait(timeout=30)


def measure(jobs: int = 200) -> list[dict[str, Any]]:
    return [run_once(workers, jobs) for workers in (1, 2)]
