"""The speed a trivial job gets through `make dev`, before and after the latency work.

One consumer, the two-node `hello` pipeline. A probe submits one job at a time and waits for
it (p50 submit -> completed from the record's own timestamps, split into the queue hop and
the run); a burst submits many at once (jobs per second, first created to last completed).
The baseline commit's tree and this one run in turn, each round, in the same script; the old
design's main cost, `kedro run --pipeline hello` in a subprocess, is timed in the same
rounds. The AWS requests one job makes are counted exactly (a boto3 hook on every client the
consumer makes), in a fresh interpreter for each tree.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "local" / "example_project"
BASELINE = "fdd79ef"  # main when this session's latency work began (the last two: de237b5, 709fb6c)
FINISHED = {"completed", "failed", "cancelled"}


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _span(record: dict[str, Any], start: str, end: str) -> float:
    return (_parse(record[end]) - _parse(record[start])).total_seconds()


# How often the client asks whether a job has finished. The figures are the record's own
# timestamps, so this only sets how soon the probe's next job is sent; but each GET costs
# the API and moto CPU that the job itself needs: at every 10 ms (before), the probe's own
# polling took most of a core of a 2-core machine from the jobs it measured.
POLL_SECONDS = 0.05


def _wait(client: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        record: dict[str, Any] = client.get(f"/jobs/{job_id}").json()
        if record["status"] in FINISHED or time.monotonic() > deadline:
            return record
        time.sleep(POLL_SECONDS)


def _dev(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    from bench.dev import start_dev

    return start_dev(env={**env, "PYTHONPATH": f"{root}/functions:{root}/local"})


def through_dev(root: Path, env: dict[str, str], probes: int, burst: int) -> dict[str, Any]:
    """One `make dev` of the tree at ``root``: a probe of sequential jobs, then a burst."""
    from bench.end_to_end import wait_healthy

    dev, api = _dev(root, env)
    submit = {"pipeline_name": "hello"}
    try:
        with httpx.Client(base_url=api, timeout=30) as client:
            wait_healthy(client)
            for _ in range(2):  # warm: the first jobs pay the project's first session
                _wait(client, client.post("/jobs", json=submit).json()["id"])
            consumer = _consumer_pid(dev.pid)
            cpu_before = _cpu_seconds(consumer)
            probe = [_wait(client, client.post("/jobs", json=submit).json()["id"])]
            for _ in range(probes - 1):
                probe.append(_wait(client, client.post("/jobs", json=submit).json()["id"]))
            time.sleep(0.5)  # the last job's process is reaped, its CPU counted
            cpu_per_job = (_cpu_seconds(consumer) - cpu_before) / probes
            with ThreadPoolExecutor(max_workers=8) as pool:
                ids = list(
                    pool.map(lambda _: client.post("/jobs", json=submit).json()["id"], range(burst))
                )
            burst_records = [_wait(client, job_id) for job_id in ids]
    finally:
        dev.terminate()
        dev.wait(timeout=30)
    done = [r for r in probe + burst_records if r["status"] == "completed"]
    assert len(done) == probes + burst, "every job completes"
    first = min(_parse(r["created_at"]) for r in burst_records)
    last = max(_parse(r["completed_at"]) for r in burst_records)
    return {
        "submit_to_completed": [_span(r, "created_at", "completed_at") for r in probe],
        "queue_to_claim": [_span(r, "created_at", "started_at") for r in probe],
        "claim_to_completed": [_span(r, "started_at", "completed_at") for r in probe],
        **_run_split(probe),
        "consumer_cpu_per_job": [cpu_per_job],
        "burst_jobs_per_second": burst / (last - first).total_seconds(),
    }


def _consumer_pid(dev_pid: int) -> int:
    """The consumer's process (its SQS poller, which forks the jobs) of a `make dev`."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == dev_pid and b"kedro_jobs.consumer.handler" in cmdline:
            return int(stat.parent.name)
    raise RuntimeError("no consumer process found")


def _cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and of its children it has reaped (the jobs' processes): unlike
    wall time, hardly changed by what else runs on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def _run_split(records: list[dict[str, Any]]) -> dict[str, list[float]]:
    """The run's time, from the record's node timeline: claimed -> first node started (the
    child process, Kedro's session and catalog), the nodes (with any progress write at
    their boundary), last node finished -> completed (the end of the run, the log put)."""
    split: dict[str, list[float]] = {
        "claim_to_first_node": [],
        "nodes": [],
        "last_node_to_completed": [],
    }
    for record in records:
        nodes = [
            n for n in record.get("nodes") or [] if n.get("started_at") and n.get("finished_at")
        ]
        if not nodes:
            continue
        first = min(_parse(n["started_at"]) for n in nodes)
        last = max(_parse(n["finished_at"]) for n in nodes)
        split["claim_to_first_node"].append((first - _parse(record["started_at"])).total_seconds())
        split["nodes"].append((last - first).total_seconds())
        split["last_node_to_completed"].append(
            (_parse(record["completed_at"]) - last).total_seconds()
        )
    return split


def kedro_run(env: dict[str, str]) -> float:
    """The old design's worker: `kedro run --pipeline hello` in a subprocess."""
    kedro_cli = str(Path(sys.executable).with_name("kedro"))
    start = time.perf_counter()
    subprocess.run(
        [kedro_cli, "run", "--pipeline", "hello"],
        cwd=PROJECT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - start


def count_requests(root: Path, env: dict[str, str]) -> dict[str, Any]:
    """The AWS requests the consumer handler makes for one `hello` job of the tree at
    ``root`` (its third: warm), in a fresh interpreter against its own moto server."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__)), "count"],
        env={**env, "PYTHONPATH": f"{root}/functions:{root}/local:{ROOT}"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _count_in_this_process() -> dict[str, Any]:
    import boto3

    calls: list[str] = []
    made = boto3.session.Session.client

    def counting_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        aws = made(self, *args, **kwargs)
        service = aws.meta.service_model.service_name
        aws.meta.events.register(
            "before-call", lambda model, **_: calls.append(f"{service}.{model.name}")
        )
        return aws

    boto3.session.Session.client = counting_client  # type: ignore[method-assign]
    from kedro_jobs_local.lambda_context import LocalContext
    from kedro_jobs_local.lambda_events import sqs_event
    from kedro_jobs_local.moto_server import running_moto
    from kedro_jobs_local.resources import create_resources

    with running_moto() as moto:
        os.environ["AWS_ENDPOINT_URL"] = moto.endpoint_url
        res = create_resources(endpoint_url=moto.endpoint_url)
        os.environ.update(res.function_env("ConsumerFunction"))
        from kedro_jobs.consumer import handler

        for i in range(3):
            calls.clear()
            body = json.dumps({"version": 1, "pipeline_name": "hello", "idempotency_key": f"c{i}"})
            assert handler.handler(sqs_event(body), LocalContext(60)) == {"batchItemFailures": []}
    by_call: dict[str, int] = {}
    for call in calls:
        by_call[call] = by_call.get(call, 0) + 1
    return {"total": len(calls), "by_call": by_call, "in_order": calls}


def _baseline_tree(into: Path, baseline: str) -> Path | None:
    """The baseline commit's files (git archive: no worktree registered); None if the
    commit is not in this clone."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", baseline], capture_output=True, check=False
    )
    if archive.returncode != 0:
        return None
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(rounds: int = 3, probes: int = 15, burst: int = 30) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "JOBS_"))}
    env.update({"KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"})
    with tempfile.TemporaryDirectory() as tmp:
        before = _baseline_tree(Path(tmp) / "before", BASELINE)
        trees = {"after": ROOT} if before is None else {"before": before, "after": ROOT}
        runs: dict[str, list[dict[str, Any]]] = {tree: [] for tree in trees}
        old: list[float] = []
        for _ in range(rounds):
            for tree, root in trees.items():
                runs[tree].append(through_dev(root, env, probes, burst))
                old.append(kedro_run(env))
        requests = {tree: count_requests(root, env) for tree, root in trees.items()}
    figures: dict[str, Any] = {"baseline": BASELINE, "rounds": rounds, "probes": probes}
    figures["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    # The machine's 1-minute load average when the measure began and ended (2 CPUs here).
    figures["load_average"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    figures["burst_jobs"] = burst
    figures["kedro_run_subprocess_s"] = statistics.median(old)
    for tree, by_round in runs.items():
        figures[tree] = {
            **{
                f"p50_{part}_s": statistics.median(v for r in by_round for v in r[part])
                for part in ("submit_to_completed", "queue_to_claim", "claim_to_completed")
            },
            **{
                f"p50_{part}_s": statistics.median(v for r in by_round for v in r[part])
                for part in ("claim_to_first_node", "nodes", "last_node_to_completed")
                if all(r[part] for r in by_round)
            },
            "p90_submit_to_completed_s": _percentile(
                [v for r in by_round for v in r["submit_to_completed"]], 0.9
            ),
            "burst_jobs_per_second": statistics.median(
                r["burst_jobs_per_second"] for r in by_round
            ),
            "consumer_cpu_per_job_s": statistics.median(
                r["consumer_cpu_per_job"][0] for r in by_round
            ),
            "consumer_cpu_per_job_by_round_s": [r["consumer_cpu_per_job"][0] for r in by_round],
            "requests_per_job": requests[tree],
            "p50_submit_to_completed_by_round_s": [
                statistics.median(r["submit_to_completed"]) for r in by_round
            ],
            "burst_jobs_per_second_by_round": [r["burst_jobs_per_second"] for r in by_round],
        }
    after = figures["after"]
    figures["old_design_over_p50"] = (
        figures["kedro_run_subprocess_s"] / after["p50_submit_to_completed_s"]
    )
    if "before" in figures:
        before = figures["before"]
        for name, key in (
            ("consumer_cpu", "consumer_cpu_per_job_s"),
            ("p50", "p50_submit_to_completed_s"),
            ("burst", "burst_jobs_per_second"),
        ):
            figures[f"{name}_after_over_before"] = after[key] / before[key]
        # The load of a shared machine drifts: each round's own ratio, then their median.
        for name, key in (
            ("p50", "p50_submit_to_completed_by_round_s"),
            ("burst", "burst_jobs_per_second_by_round"),
        ):
            figures[f"{name}_after_over_before_median_of_rounds"] = statistics.median(
                a / b for a, b in zip(after[key], before[key], strict=True)
            )
    return figures


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from bench.dev import bench_environment

    bench_environment(PROJECT)
    os.environ["KEDRO_LOGGING_CONFIG"] = str(ROOT / "functions/kedro_jobs/runner/kedro_logging.yml")
    if sys.argv[1:] == ["count"]:
        print(json.dumps(_count_in_this_process()))
    else:
        print(json.dumps(measure(), indent=2))
