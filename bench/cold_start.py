"""Cold start: a fresh interpreter importing and initialising each handler, against
`import boto3` and `import kedro` alone; and the consumer's time from a fresh process to its
first finished job. Each figure is the median of fresh processes, run interleaved.

`compare` measures the same against an earlier commit (BASELINE, checked out into a
temporary git worktree and run from the same virtualenv), interleaved: the before and after
of this project's cold-start work. The processes see LAMBDA_TASK_ROOT, as in Lambda (where,
for one, the X-Ray SDK skips its sampler's client)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

PROBES = {
    "import boto3": "import boto3",
    "import kedro": "import kedro.framework.session",
    "api handler import": "import kedro_jobs.api.handler",
    "consumer handler import": "import kedro_jobs.consumer.handler",
    "consumer init (bootstrap)": "import kedro_jobs.consumer.handler as h; h.consumer().runner",
}
# The last commit before the cold-start work (X-Ray opt-in, manifest after the first batch,
# no collections while bootstrapping): see docs/benchmarks.md.
BASELINE = "ac05138"
COMPARED = {
    "api handler import": PROBES["api handler import"],
    "consumer handler import": PROBES["consumer handler import"],
}
FIRST_JOB_NAME = "consumer: process start to first job completed"
FIRST_INVOCATION_NAME = "consumer: process start to first invocation's end"

# Prints the seconds from process start to the job's final write (when a client polling it
# sees it completed), then to the end of the invocation.
FIRST_JOB = """
import json, sys, time
start = time.perf_counter()
import kedro_jobs.consumer.handler as h
try:  # the consumer's store role; a tree from before the roles has one JobStore
    from kedro_jobs.core.store.roles.run import RunJobs as Store
except ImportError:
    from kedro_jobs.core.store import JobStore as Store
sys.path.insert(0, {local!r})  # this tree's stand-ins, whichever tree's functions are measured
from kedro_jobs_local.lambda_context import LocalContext
from kedro_jobs_local.lambda_events import sqs_event
finished = []
finish = Store.finish
def timed_finish(*args, **kwargs):
    result = finish(*args, **kwargs)
    finished.append(time.perf_counter() - start)
    return result
Store.finish = timed_finish
body = json.dumps({{"version": 1, "pipeline_name": "hello", "idempotency_key": sys.argv[1]}})
assert h.handler(sqs_event(body), LocalContext(60)) == {{"batchItemFailures": []}}
print(finished[0], time.perf_counter() - start)
"""


def lambda_like(env: dict[str, str]) -> dict[str, str]:
    # A directory that does not exist: nothing is read from it (KEDRO_PROJECT_PATH is set).
    return {**env, "LAMBDA_TASK_ROOT": "/nonexistent-lambda-task-root"}


def _fresh(code: str, env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def _first_job(env: dict[str, str], key: str) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", FIRST_JOB.format(local=str(ROOT / "local")), key],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    completed, returned = out.stdout.strip().splitlines()[-1].split()
    return float(completed), float(returned)


def measure(env: dict[str, str], rounds: int = 5) -> dict[str, Any]:
    env = lambda_like(env)
    samples: dict[str, list[float]] = {name: [] for name in PROBES}
    samples["python -c pass"] = []
    samples[FIRST_JOB_NAME] = []
    samples[FIRST_INVOCATION_NAME] = []
    for i in range(rounds):
        samples["python -c pass"].append(_fresh("pass", env))
        for name, code in PROBES.items():
            samples[name].append(_fresh(code, env))
        completed, returned = _first_job(env, f"cold-{time.time_ns()}-{i}")
        samples[FIRST_JOB_NAME].append(completed)
        samples[FIRST_INVOCATION_NAME].append(returned)
    return {name: statistics.median(values) for name, values in samples.items()}


def compare(env: dict[str, str], rounds: int = 7, baseline: str = BASELINE) -> dict[str, Any]:
    """Medians before (``baseline``) and after (this tree), interleaved; {} if the
    baseline commit is not in this clone."""
    env = lambda_like(env)
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        added = subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before), baseline],
            capture_output=True,
            text=True,
            check=False,
        )
        if added.returncode != 0:
            return {}
        try:
            trees = {"before": before, "after": ROOT}
            samples: dict[str, dict[str, list[float]]] = {t: {} for t in trees}
            for i in range(rounds):
                for tree, root in trees.items():
                    tree_env = {**env, "PYTHONPATH": f"{root}/functions:{root}/local"}
                    for name, code in COMPARED.items():
                        samples[tree].setdefault(name, []).append(_fresh(code, tree_env))
                    completed, returned = _first_job(tree_env, f"cold-{tree}-{time.time_ns()}-{i}")
                    samples[tree].setdefault(FIRST_JOB_NAME, []).append(completed)
                    samples[tree].setdefault(FIRST_INVOCATION_NAME, []).append(returned)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)],
                capture_output=True,
                check=False,
            )
    medians = {t: {n: statistics.median(v) for n, v in by.items()} for t, by in samples.items()}
    return {
        "baseline": baseline,
        "rounds": rounds,
        "before": medians["before"],
        "after": medians["after"],
        "saved_seconds": {n: medians["before"][n] - medians["after"][n] for n in medians["after"]},
    }


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
        print(json.dumps({"now": measure(env), "before_after": compare(env)}, indent=2))
