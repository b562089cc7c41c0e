"""What the node timeline costs a job: the consumer handler running a real pipeline against a
moto server with the timeline written in its progress writes, and with none (the sink built
without one), in interleaved rounds; medians and their ratio. The bar: under 5 %.

    .venv/bin/python -m bench.timeline_overhead [rounds] > /dev/null  # prints to stderr
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "local" / "example_project"
CONSUMER_LOGGING = ROOT / "functions" / "kedro_jobs" / "runner" / "kedro_logging.yml"
PIPELINES = ("hello", "feature_engineering", "reporting")


@contextmanager
def _without_timeline() -> Iterator[None]:
    from kedro_jobs.consumer import run as run_module

    real = run_module.Timeline
    run_module.Timeline = lambda *_, **__: None  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        run_module.Timeline = real  # type: ignore[misc]


def write_cost(repeats: int = 200) -> dict[str, Any]:
    """The progress write alone, against the same moto server: without a timeline, and with
    one of 4 and of 300 nodes (the record's cap), interleaved; medians in milliseconds."""
    from datetime import timedelta

    from kedro_jobs.core.models import Job, Progress, utcnow
    from kedro_jobs.core.settings import get_settings
    from kedro_jobs.core.store import RunJobs
    from kedro_jobs.core.timeline import MAX_TIMELINE_NODES, Timeline

    store = RunJobs(get_settings().jobs_table_name)
    job = Job.new(pipeline_name="bench", user_id="bench")
    job = store.create_claimed(job, lease_seconds=600) or job

    def timeline(n: int) -> dict[str, Any]:
        t = Timeline([], segment=1, compute="lambda")
        for i in range(n):
            t.finished(f"pipeline_namespace.some_node_name_{i}", 0.25, utcnow() + timedelta(i))
        return {"nodes": t.nodes(), "nodes_omitted": None, "eta": utcnow()}

    payloads: dict[str, dict[str, Any] | None] = {
        "none": None,
        "4_nodes": timeline(4),
        f"{MAX_TIMELINE_NODES}_nodes": timeline(MAX_TIMELINE_NODES),
    }
    samples: dict[str, list[float]] = {name: [] for name in payloads}
    progress = Progress(total_nodes=4, completed_nodes=1, current_node="x")
    for _ in range(repeats):
        for name, payload in payloads.items():
            started = time.perf_counter()
            assert store.report_progress(job, progress, payload) is False
            samples[name].append((time.perf_counter() - started) * 1000)
    return {f"progress_write_ms_{k}": round(statistics.median(v), 3) for k, v in samples.items()}


def measure(rounds: int = 12) -> dict[str, Any]:
    os.environ.setdefault("KEDRO_LOGGING_CONFIG", str(CONSUMER_LOGGING))
    from kedro_jobs.consumer import handler as consumer_handler
    from kedro_jobs_local.lambda_context import LocalContext
    from kedro_jobs_local.lambda_events import sqs_event

    counter = iter(range(10**9))

    def job(pipeline: str) -> float:
        body = json.dumps(
            {"version": 1, "pipeline_name": pipeline, "idempotency_key": f"t{next(counter)}"}
        )
        started = time.perf_counter()
        result = consumer_handler.handler(sqs_event(body), LocalContext(60))
        assert result == {"batchItemFailures": []}, result
        return time.perf_counter() - started

    out: dict[str, Any] = {"rounds": rounds}
    for pipeline in PIPELINES:
        job(pipeline)  # warm
        with _without_timeline():
            job(pipeline)
        on: list[float] = []
        off: list[float] = []
        for i in range(rounds):
            # Alternate which goes first, so neither gains from the other's warm-up.
            if i % 2:
                on.append(job(pipeline))
            with _without_timeline():
                off.append(job(pipeline))
            if not i % 2:
                on.append(job(pipeline))
        with_t, without_t = statistics.median(on), statistics.median(off)
        out[pipeline] = {
            "median_seconds_with_timeline": round(with_t, 4),
            "median_seconds_without": round(without_t, 4),
            "overhead_ratio": round(with_t / without_t - 1, 4),
        }
    return out


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from bench.dev import bench_environment

    bench_environment(PROJECT)
    sys.path.insert(0, str(ROOT / "local"))
    from kedro_jobs_local.moto_server import running_moto
    from kedro_jobs_local.resources import create_resources

    with running_moto() as moto:
        os.environ["AWS_ENDPOINT_URL"] = moto.endpoint_url
        res = create_resources(endpoint_url=moto.endpoint_url)
        os.environ.update(res.function_env("ConsumerFunction"))
        result = {
            "write_cost": write_cost(),
            "per_job": measure(int(sys.argv[1]) if len(sys.argv) > 1 else 12),
        }
    # stdout carries the consumer's own log lines.
    print(json.dumps(result, indent=2), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
