"""Fan-out through `make dev`: a probe pipeline of 4 independent branches of ``seconds`` each
plus a join, with 4 consumers, once with ``fan_out: false`` (one worker: the sequential sum)
and once fanned out (moto's Step Functions runs the template's state machine). The one-worker
run goes first: it records the nodes' durations, which is what lets the second fan out
(groups under FAN_OUT_MIN_GROUP_SECONDS are not split). Submit-to-completed of both, their
ratio, and the overhead per group (the fanned run less one branch, over its groups).

    python bench/fan_out.py [--seconds 20] [--branches 4]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.dev import dev_environment, start_dev  # noqa: E402
from bench.end_to_end import wait_healthy  # noqa: E402
from kedro_jobs_local.counting_project import write_kedro_project  # noqa: E402

_NODES = """
import time


def work(branch, seconds):
    time.sleep(seconds)
    return {"branch": branch, "slept": seconds}


def join(*parts):
    return {"branches": len(parts), "slept": sum(p["slept"] for p in parts)}
"""

_REGISTRY = """
from kedro.pipeline import node, pipeline

from fan_out_probe.nodes import join, work


def register_pipelines():
    names = ["b{{}}".format(i) for i in range(1, {branches} + 1)]
    branches = [node(lambda s, b=b: work(b, s), "params:seconds", "out_" + b, name="work_" + b)
                for b in names]
    probe = pipeline([*branches, node(join, ["out_" + b for b in names], "joined", name="join")])
    return {{"__default__": probe, "probe": probe}}
"""


def write_probe(root: Path, branches: int, seconds: float) -> Path:
    # Its braces escaped: the writer formats the registry again, with the package name.
    registry = _REGISTRY.format(branches=branches).replace("{", "{{").replace("}", "}}")
    return write_kedro_project(
        root, "fan_out_probe", nodes=_NODES, registry=registry, parameters=f"seconds: {seconds}\n"
    )


def _seconds(record: dict[str, Any]) -> float:
    parse = datetime.fromisoformat
    return (parse(record["completed_at"]) - parse(record["created_at"])).total_seconds()


def _run(client: httpx.Client, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    job_id = client.post("/jobs", json=body).json()["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record: dict[str, Any] = client.get(f"/jobs/{job_id}").json()
        if record["status"] in {"completed", "failed", "cancelled"}:
            return record
        time.sleep(0.2)
    raise RuntimeError(f"job {job_id} did not end within {timeout:.0f} s")


def measure(branches: int = 4, seconds: float = 20.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        project = write_probe(Path(tmp) / "probe", branches, seconds)
        dev, api = start_dev(
            workers=branches,
            consumer_timeout=300,
            env=dev_environment(KEDRO_PROJECT_PATH=str(project)),
        )
        try:
            with httpx.Client(base_url=api, timeout=30) as client:
                wait_healthy(client)
                timeout = branches * seconds * 3 + 60
                alone = _run(client, {"pipeline_name": "probe", "fan_out": False}, timeout)
                fanned = _run(client, {"pipeline_name": "probe"}, timeout)
        finally:
            dev.terminate()
            dev.wait(timeout=60)
    for record in (alone, fanned):
        assert record["status"] == "completed", record["error_message"]
    assert fanned["groups"], "the probe did not fan out"
    assert fanned["results"] == alone["results"]
    one, many = _seconds(alone), _seconds(fanned)
    groups = len(fanned["groups"])
    return {
        "branches": branches,
        "branch_seconds": seconds,
        "sequential_sum_seconds": branches * seconds,
        "one_worker_seconds": round(one, 2),
        "fanned_out_seconds": round(many, 2),
        "ratio_fanned_to_one_worker": round(many / one, 3),
        "ratio_fanned_to_sequential_sum": round(many / (branches * seconds), 3),
        "groups": groups,
        "overhead_per_group_seconds": round((many - seconds) / groups, 2),
        "one_worker_overhead_seconds": round(one - branches * seconds, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--branches", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    result = measure(args.branches, args.seconds)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
