"""A real project's pipeline through the service against `kedro run`, interleaved in one
script on one machine: `.venv/bin/python -m bench.real_project PROJECT [PIPELINE] [RUNS]`
(from the repository root).

`kedro run --pipeline P` runs in a subprocess in a copy of the project (what a user would do
by hand); the service is `make dev` (one consumer, moto) on another copy, timed from submit to
`completed` as the client sees it, after one warm-up job. Prints medians and the ratio.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.dev import dev_environment, start_dev
from bench.end_to_end import FINISHED, wait_healthy


def _kedro_run(project: Path, pipeline: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).with_name("kedro")), "run", "--pipeline", pipeline],
        cwd=project, check=True, capture_output=True,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLCONFIGDIR": "/tmp"},
    )  # fmt: skip
    return time.perf_counter() - started


def _service_run(client: httpx.Client, pipeline: str) -> float:
    started = time.perf_counter()
    job_id = client.post("/jobs", json={"pipeline_name": pipeline}).json()["id"]
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in FINISHED:
            break
        time.sleep(0.02)
    if job["status"] != "completed":
        raise RuntimeError(job["error_message"])
    return time.perf_counter() - started


def main(project: str, pipeline: str = "data_processing", runs: int = 5) -> dict[str, float]:
    base = Path(tempfile.mkdtemp(prefix="kedro-jobs-real-"))
    by_hand, served = base / "by_hand", base / "served"
    for copy in (by_hand, served):
        shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".git", ".venv"))
    dev, api = start_dev(
        consumer_timeout=None,
        state_dir=str(base / "state"),
        env=dev_environment(KEDRO_PROJECT_PATH=str(served), MPLCONFIGDIR="/tmp"),
    )
    try:
        with httpx.Client(base_url=api, timeout=60) as client:
            wait_healthy(client)
            _service_run(client, pipeline)  # warm-up: the consumer's first job
            _kedro_run(by_hand, pipeline)
            hand, service = [], []
            for _ in range(runs):
                hand.append(_kedro_run(by_hand, pipeline))
                service.append(_service_run(client, pipeline))
    finally:
        dev.terminate()
        dev.wait(60)
        shutil.rmtree(base, ignore_errors=True)
    result = {
        "kedro_run_median_s": round(statistics.median(hand), 3),
        "service_median_s": round(statistics.median(service), 3),
    }
    result["speed_up"] = round(result["kedro_run_median_s"] / result["service_median_s"], 2)
    return result


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args:
        raise SystemExit(__doc__)
    print(json.dumps(main(args[0], *args[1:2], *(int(a) for a in args[2:3]))))
