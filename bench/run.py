"""`make bench`: every benchmark, then bench/results.json and docs/benchmarks.md (+ chart).

Machines here are shared and noisy: every figure is a median of repeated runs, and every
comparison is a ratio of two things run interleaved in the same script.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import (  # noqa: E402
    api_overhead,
    cold_start,
    consumer_overhead,
    cost,
    end_to_end,
    fan_out,
    latency,
    listing,
)
from bench.dev import bench_environment  # noqa: E402
from bench.report import write_report  # noqa: E402


def main() -> int:
    bench_environment()
    from kedro_jobs_local.moto_server import running_moto
    from kedro_jobs_local.resources import create_resources

    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
    }
    began = time.monotonic()
    with running_moto() as moto:
        os.environ["AWS_ENDPOINT_URL"] = moto.endpoint_url
        res = create_resources(endpoint_url=moto.endpoint_url)
        os.environ.update(res.function_env("ConsumerFunction"))
        os.environ.update(res.function_env("ApiFunction"))
        step("consumer overhead", began)
        results["consumer_overhead"] = consumer_overhead.measure()
        step("API overhead", began)
        results["api_overhead"] = api_overhead.measure(res.table_name, res.queue_url)
        step("cold start", began)
        results["cold_start"] = cold_start.measure(dict(os.environ))
        step("cold start before/after", began)
        results["cold_start_before_after"] = cold_start.compare(dict(os.environ))
        step("listing at scale", began)
        results["listing"] = listing.measure(res.table_name)
    step("end to end", began)
    results["end_to_end"] = end_to_end.measure()
    step("fan-out (4 branches of 20 s + a join, 4 consumers)", began)
    results["fan_out"] = fan_out.measure(branches=4, seconds=20.0)
    step("fan-out of a modular project (4 namespaced model pipelines, 4 consumers)", began)
    results["fan_out_modular"] = fan_out.measure_modular(workers=4)
    step("latency before/after", began)
    results["latency"] = latency.measure()
    medians = results["consumer_overhead"]["median_seconds"]
    results["cost"] = cost.estimate(
        trivial_consumer_s=medians["handler_fork"],
        api_s=results["api_overhead"]["api_median_ms"] / 1000,
        kedro_run_s=medians["kedro_run_subprocess"],
    )
    results["duration_seconds"] = time.monotonic() - began
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_report(results, ROOT / "docs")
    step("done", began)
    return 0


def step(name: str, began: float) -> None:
    sys.stderr.write(f"[{time.monotonic() - began:6.1f}s] {name}\n")


if __name__ == "__main__":
    raise SystemExit(main())
