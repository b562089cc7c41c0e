"""`make load`: 1,000 submissions from 20 concurrent clients against the local stack with 2
consumers, loopback only, bounded in count and time. Checks: every 202 has an item, every
job reaches a terminal state, none lost, none run twice (the project's nodes record each
run). Reports throughput, latency percentiles and how deep the queue got."""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import httpx

from kedro_jobs.core.states import TERMINAL
from kedro_jobs_local.counting_project import counting_stack_env, executions
from kedro_jobs_local.dev_stack import running_local_stack

ROOT = Path(__file__).resolve().parents[1]
FINISHED = {str(status) for status in TERMINAL}  # as the API writes them

SUBMISSIONS = 1_000
CLIENTS = 20
BOUND_SECONDS = 600  # every job must be terminal within this


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="kedro-jobs-load-"))
    env, record = counting_stack_env(work, "load_project")
    with running_local_stack(work / "dev.log", workers=2, env=env) as stack:
        sqs = boto3.client(
            "sqs",
            endpoint_url=stack.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # the local emulator accepts any
        )
        queue = sqs.get_queue_url(QueueName="kedro-jobs-queue")["QueueUrl"]
        depth: list[int] = []
        stop = threading.Event()

        def watch_queue() -> None:
            while not stop.is_set():
                attrs = sqs.get_queue_attributes(
                    QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]
                depth.append(int(attrs["ApproximateNumberOfMessages"]))
                time.sleep(0.5)

        watcher = threading.Thread(target=watch_queue, daemon=True)
        watcher.start()
        latencies: list[float] = []
        accepted: list[str] = []
        errors: Counter[int] = Counter()
        lock = threading.Lock()

        def submit(i: int) -> None:
            with httpx.Client(base_url=stack.api, timeout=30) as client:
                start = time.perf_counter()
                response = client.post(
                    "/api/v1/jobs", json={"pipeline_name": "two_nodes", "parameters": {"x": i}}
                )
                elapsed = time.perf_counter() - start
            with lock:
                if response.status_code == 202:
                    accepted.append(response.json()["id"])
                    latencies.append(elapsed)
                else:
                    errors[response.status_code] += 1

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            list(pool.map(submit, range(SUBMISSIONS)))
        submit_seconds = time.perf_counter() - began

        records: dict[str, dict[str, Any]] = {}
        with httpx.Client(base_url=stack.api, timeout=30) as client:
            deadline = time.monotonic() + BOUND_SECONDS
            while len(records) < len(accepted) and time.monotonic() < deadline:
                for job_id in accepted:
                    if job_id not in records:
                        record_ = client.get(f"/api/v1/jobs/{job_id}").json()
                        if record_["status"] in FINISHED:
                            records[job_id] = record_
                time.sleep(1)
            missing = [j for j in accepted if client.get(f"/api/v1/jobs/{j}").status_code != 200]
        stop.set()
        watcher.join()

    parse = datetime.fromisoformat
    to_done = [
        (parse(r["completed_at"]) - parse(r["created_at"])).total_seconds()
        for r in records.values()
    ]
    ran = executions(record)
    twice = [k for k, n in ran.items() if n > 1]
    result = {
        "submissions": SUBMISSIONS,
        "clients": CLIENTS,
        "consumers": 2,
        "accepted_202": len(accepted),
        "rejected": dict(errors),
        "items_missing_for_a_202": len(missing),
        "terminal_within_bound": len(records),
        "bound_seconds": BOUND_SECONDS,
        "statuses": dict(Counter(r["status"] for r in records.values())),
        "lost": len(accepted) - len(records),
        "nodes_run_twice": len(twice),
        "submit_throughput_per_s": len(accepted) / submit_seconds,
        "submit_latency_ms": {f"p{q}": _pct(latencies, q / 100) * 1000 for q in (50, 95, 99)},
        "submit_to_completed_s": {f"p{q}": _pct(to_done, q / 100) for q in (50, 95, 99)},
        "max_queue_depth": max(depth, default=0),
        "median_queue_depth": statistics.median(depth) if depth else 0,
    }
    out = ROOT / "bench" / "load_results.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    ok = result["lost"] == 0 and result["nodes_run_twice"] == 0 and not missing
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
