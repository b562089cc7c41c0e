"""Fan-out through `make dev`: a probe pipeline of 4 independent branches of ``seconds`` each
plus a join, with 4 consumers, once with ``fan_out: false`` (one worker: the sequential sum)
and once fanned out (moto's Step Functions runs the template's state machine). The one-worker
run goes first: it records the nodes' durations, which is what lets the second fan out
(groups under FAN_OUT_MIN_GROUP_SECONDS are not split). Submit-to-completed of both, their
ratio, and the overhead per group (the fanned run less one branch, over its groups).

    python bench/fan_out.py [--seconds 20] [--branches 4]
    python bench/fan_out.py --modular [--workers 4] [--rows 200000] [--bootstrap 120]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def overheads(fanned: dict[str, Any], node_seconds: dict[str, float]) -> dict[str, Any]:
    """Where a fanned-out job's time went besides its nodes, from its record's server times:
    ``claim`` (submit to its first group running: the job's delivery, claim and plan, the
    execution's start, the group message's send and receive, the group's claim), each group's
    ``session_and_handover`` (its run less its nodes' one-worker durations: its Kedro session,
    reading the hand-overs it needs, staging what it wrote and its own hand-over; CPU contention
    between groups sharing the machine's cores lands here too), ``coordination`` (a level's
    last group ended to the next level's first group running: the state machine's next step,
    the message, the claim), and ``commit`` (the last group ended to the job completed)."""
    plan = fanned["fan_out"]
    runs = fanned["groups"]
    nodes = {g["id"]: g["nodes"] for g in plan["groups"]}
    levels = plan["levels"]
    starts = [min(_at(runs[g]["started_at"]) for g in level) for level in levels]
    ends = [max(_at(runs[g]["ended_at"]) for g in level) for level in levels]
    per_group = {
        g: (_at(run["ended_at"]) - _at(run["started_at"])).total_seconds()
        - sum(node_seconds.get(n, 0.0) for n in nodes[g])
        for g, run in runs.items()
    }
    gaps = [(starts[i] - ends[i - 1]).total_seconds() for i in range(1, len(levels))]
    return {
        "claim_seconds": round((starts[0] - _at(fanned["created_at"])).total_seconds(), 2),
        "session_and_handover_seconds_per_group": round(statistics.mean(per_group.values()), 2),
        "coordination_seconds_per_level": round(statistics.mean(gaps), 2) if gaps else None,
        "commit_seconds": round((_at(fanned["completed_at"]) - ends[-1]).total_seconds(), 2),
    }


def measure_modular(
    workers: int = 4, rows: int = 200_000, bootstrap: int = 120, rounds: int = 2
) -> dict[str, Any]:
    """The modular fixture project (tests/support/modular_project.py: a shared CSV, four
    namespaced model pipelines with real file datasets) through `make dev` with ``workers``
    consumers: a warm-up run on one worker (it times the nodes: fanning out needs groups
    known to be long enough; the bench also sets FAN_OUT_MIN_GROUP_SECONDS=0), then ``rounds``
    of one-worker and fanned-out runs, interleaved.
    Medians, their ratio, every round's committed files compared, and the overheads."""
    from tests.support.modular_project import write_modular_project

    alone_runs: list[dict[str, Any]] = []
    fanned_runs: list[dict[str, Any]] = []
    same_files: list[bool] = []
    with tempfile.TemporaryDirectory() as tmp:
        project = write_modular_project(Path(tmp) / "modular", rows=rows, bootstrap=bootstrap)
        env = dev_environment(KEDRO_PROJECT_PATH=str(project))
        # One core a worker, as a Lambda of up to 1,769 MB has: numpy's BLAS would otherwise
        # spread the one-worker run's solves over every core of this machine.
        env.update(
            dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1")
        )
        # Every fanned-out round fans out, whatever the rule's threshold says of groups that
        # take 5-8 s here (a quiet moment made one round run on one worker).
        env["FAN_OUT_MIN_GROUP_SECONDS"] = "0"
        dev, api = start_dev(workers=workers, consumer_timeout=600, env=env)
        try:
            with httpx.Client(base_url=api, timeout=30) as client:
                wait_healthy(client)
                alone_body = {"pipeline_name": "models", "fan_out": False}
                warm_up = _run(client, alone_body, 900)
                assert warm_up["status"] == "completed", warm_up["error_message"]
                for _ in range(rounds):
                    alone_runs.append(_run(client, alone_body, 900))
                    files = _files(project)
                    fanned_runs.append(_run(client, {"pipeline_name": "models"}, 900))
                    same_files.append(_files(project) == files)
        finally:
            dev.terminate()
            dev.wait(timeout=60)
    for record in alone_runs + fanned_runs:
        groups = {
            g: (run["status"], run["runs"], run["error"])
            for g, run in (record["groups"] or {}).items()
        }
        assert record["status"] == "completed", (record["id"], record["error_message"], groups)
    assert all(r["groups"] for r in fanned_runs), "the modular project did not fan out"
    assert all(r["results"] == alone_runs[0]["results"] for r in alone_runs + fanned_runs)
    one = statistics.median(_seconds(r) for r in alone_runs)
    many = statistics.median(_seconds(r) for r in fanned_runs)
    node_seconds = {n["name"]: n["duration"] or 0.0 for n in alone_runs[-1]["nodes"] or []}
    regions = [g for g in fanned_runs[-1]["fan_out"]["groups"] if "." in g["nodes"][0]]
    longest = max(sum(node_seconds[n] for n in g["nodes"]) for g in regions)
    rest = sum(v for k, v in node_seconds.items() if "." not in k)  # clean, compare
    return {
        "project": "tests/support/modular_project.py: 4 namespaced model pipelines",
        "rows": rows,
        "bootstrap": bootstrap,
        "workers": workers,
        "rounds": rounds,
        "groups": len(fanned_runs[-1]["groups"]),
        "levels": len(fanned_runs[-1]["fan_out"]["levels"]),
        "one_worker_seconds": round(one, 2),
        "fanned_out_seconds": round(many, 2),
        "ratio_fanned_to_one_worker": round(many / one, 3),
        "speed_up": round(one / many, 2),
        "one_worker_node_seconds": round(sum(node_seconds.values()), 2),
        "critical_path_node_seconds": round(rest + longest, 2),
        # The best a fanned-out run can do on this machine: the regions' CPU-bound work
        # shares its cores (on AWS each worker has its own).
        "cpus": os.cpu_count(),
        "best_on_this_machine_seconds": round(
            rest + max(longest, (sum(node_seconds.values()) - rest) / (os.cpu_count() or 1)), 2
        ),
        "committed_files_equal": all(same_files),
        "overheads": overheads(fanned_runs[-1], node_seconds),
    }


def _files(project: Path) -> dict[str, bytes]:
    """The files a run committed to `make dev`'s data root (the project folder), but the raw
    input: the next run writes them again."""
    data = project / "data"
    return {
        str(p.relative_to(data)): p.read_bytes()
        for p in sorted(data.rglob("*"))
        if p.is_file() and "01_raw" not in p.parts and ".kedro-jobs" not in p.parts
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--branches", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--modular", action="store_true", help="the modular project instead")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--bootstrap", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if args.modular:
        result = measure_modular(args.workers, args.rows, args.bootstrap, args.rounds)
    else:
        result = measure(args.branches, args.seconds)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
