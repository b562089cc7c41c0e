"""Cold start: a fresh interpreter importing and initialising each handler, against
`import boto3` and `import kedro` alone; and the consumer's time from a fresh process to its
first finished job. Each figure is the median of fresh processes, run interleaved."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

PROBES = {
    "import boto3": "import boto3",
    "import kedro": "import kedro.framework.session",
    "api handler import": "import kedro_jobs.api.handler",
    "consumer handler import": "import kedro_jobs.consumer.handler",
    "consumer init (bootstrap + manifest)": (
        "import kedro_jobs.consumer.handler as h; h.consumer().runner"
    ),
}

FIRST_JOB = """
import json, sys, time
start = time.perf_counter()
import kedro_jobs.consumer.handler as h
from kedro_jobs.consumer.context import LocalContext
sys.path.insert(0, {root!r})
from tests.support.events import sqs_event
body = json.dumps({{"version": 1, "pipeline_name": "hello", "idempotency_key": sys.argv[1]}})
assert h.handler(sqs_event(body), LocalContext(60)) == {{"batchItemFailures": []}}
print(time.perf_counter() - start)
"""


def _fresh(code: str, env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, check=True, capture_output=True, text=True
    )
    if code.startswith("\nimport json"):
        return float(out.stdout.strip().splitlines()[-1])
    return time.perf_counter() - start


def measure(env: dict[str, str], rounds: int = 5) -> dict[str, Any]:
    samples: dict[str, list[float]] = {name: [] for name in PROBES}
    samples["python -c pass"] = []
    samples["consumer: process start to first finished job"] = []
    for i in range(rounds):
        samples["python -c pass"].append(_fresh("pass", env))
        for name, code in PROBES.items():
            samples[name].append(_fresh(code, env))
        samples["consumer: process start to first finished job"].append(
            _fresh(FIRST_JOB.format(root=str(ROOT)), env, f"cold-{time.time_ns()}-{i}")
        )
    return {name: statistics.median(values) for name, values in samples.items()}


if __name__ == "__main__":
    from kedro_jobs_local.moto_server import running_moto
    from kedro_jobs_local.resources import create_resources

    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "KEDRO_DISABLE_TELEMETRY": "1",
    }
    os.environ.update(
        {k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    )
    with running_moto() as moto:
        res = create_resources(endpoint_url=moto.endpoint_url)
        env.update(res.function_env("ConsumerFunction"), AWS_ENDPOINT_URL=moto.endpoint_url)
        print(json.dumps(measure(env), indent=2))
