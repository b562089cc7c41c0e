"""Fan-out through `make dev`: moto's Step Functions runs the template's state machine, the
local consumers run a job's groups side by side, and the job completes with what a one-worker
run gives; ``fan_out: false`` runs it on one worker."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from kedro_jobs.core.states import TERMINAL
from kedro_jobs_local.dev_stack import running_local_stack
from tests.support.fanout_project import write_fanout_project

from .conftest import busy_consumers, until, wait_for


def test_a_job_fans_out_over_the_local_consumers(tmp_path: Path) -> None:
    project = write_fanout_project(tmp_path / "project")
    env = {"KEDRO_PROJECT_PATH": str(project), "FAN_OUT_MIN_GROUP_SECONDS": "0"}
    with running_local_stack(tmp_path / "dev.log", workers=3, env=env) as stack:
        api = stack.client()
        fanned = api.post("/api/v1/jobs", json={"pipeline_name": "branches"}).json()
        alone = api.post(
            "/api/v1/jobs", json={"pipeline_name": "branches", "fan_out": False}
        ).json()
        fanned, alone = wait_for(api, fanned["id"]), wait_for(api, alone["id"])
        assert fanned["status"] == alone["status"] == "completed", fanned["error_message"]
        assert fanned["results"] == alone["results"] == {"summary": {"total": 9.0, "branches": 3}}
        groups = fanned["groups"]
        assert sorted(groups) == ["g1", "g2", "g3", "g4"]
        assert {g["status"] for g in groups.values()} == {"completed"}
        assert fanned["progress"]["completed_nodes"] == fanned["progress"]["total_nodes"] == 7
        assert alone["groups"] is None
        log = api.get(f"/api/v1/jobs/{fanned['id']}/logs").text
        assert "== group g4 (report) ==" in log


def _stack_env(tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    """The fan-out project on a local data root, its nodes recorded as they start."""
    project = write_fanout_project(tmp_path / "project")
    root, record = tmp_path / "root", tmp_path / "executions.txt"
    env = {
        "KEDRO_PROJECT_PATH": str(project),
        "FAN_OUT_MIN_GROUP_SECONDS": "0",
        "JOBS_DATA_ROOT": str(root),
        "KEDRO_JOBS_TEST_RECORD": str(record),
    }
    return env, root, record


def _settled(api: Any, job_id: str) -> dict[str, Any] | None:
    """The record once the job ended and none of its groups runs any more (a group stops at
    its next node boundary, which may come just after the job's end is recorded)."""
    record: dict[str, Any] = api.get(f"/api/v1/jobs/{job_id}").json()
    if record["status"] not in TERMINAL:
        return None
    groups = (record.get("groups") or {}).values()
    return None if any(g["status"] == "running" for g in groups) else record


def _branches_running(api: Any, job_id: str) -> dict[str, Any] | None:
    """The record once the three branch groups all run their first node."""
    record: dict[str, Any] = api.get(f"/api/v1/jobs/{job_id}").json()
    branches = [g for g in (record.get("groups") or {}).values() if g["nodes"] == 2]
    running = len(branches) == 3 and all(g["status"] == "running" for g in branches)
    return record if running and all(g["current_node"] for g in branches) else None


@pytest.mark.slow  # the nodes sleep: real time
def test_a_cancel_stops_every_running_group_at_its_next_node_boundary(tmp_path: Path) -> None:
    env, root, record = _stack_env(tmp_path)
    with running_local_stack(tmp_path / "dev.log", workers=3, env=env) as stack:
        api = stack.client()
        params = {"prep_pause": 6.0, "pause": 6.0}
        job = api.post(
            "/api/v1/jobs", json={"pipeline_name": "branches", "parameters": params}
        ).json()
        until("the three branches running", lambda: _branches_running(api, job["id"]), 90)
        assert api.post(f"/api/v1/jobs/{job['id']}/cancel").status_code < 300
        at_cancel = api.get(f"/api/v1/jobs/{job['id']}").json()
        done = until("every group stopped", lambda: _settled(api, job["id"]), 90)
    assert done["status"] == "cancelled", done["error_message"]
    ran = record.read_text().split()
    assert "report" not in ran  # the join never started
    # Each branch finished the node it was running and started no other.
    for group in at_cancel["groups"].values():
        if group["current_node"] and group["current_node"].startswith("prep_"):
            assert "fit_" + group["current_node"][-1] not in ran, ran
    assert any(g["current_node"].startswith("prep_") for g in at_cancel["groups"].values()
               if g["current_node"])  # fmt: skip
    assert {g["status"] for g in done["groups"].values()} <= {"cancelled", "pending"}
    assert not (root / "data").exists()  # nothing committed
    assert not (root / ".kedro-jobs" / "groups" / job["id"]).exists()  # no staging left


@pytest.mark.slow  # the nodes sleep: real time
def test_a_failing_group_fails_the_job_naming_its_node_and_its_siblings_stop(
    tmp_path: Path,
) -> None:
    env, root, record = _stack_env(tmp_path)
    with running_local_stack(tmp_path / "dev.log", workers=3, env=env) as stack:
        api = stack.client()
        params = {"prep_pause": 6.0, "pause": 6.0}
        job = api.post(
            "/api/v1/jobs", json={"pipeline_name": "failing_early", "parameters": params}
        ).json()
        done = until("every group stopped", lambda: _settled(api, job["id"]), 90)
    assert done["status"] == "failed"
    assert done["error_message"] == "ValueError: branch b has no data (node: prep_b)"
    ran = record.read_text().split()
    # Branches a and c were in their first node when b failed: they stopped after it.
    assert sorted(ran) == ["prep_a", "prep_b", "prep_c"], ran
    statuses = {g["status"] for gid, g in done["groups"].items()}
    assert "failed" in statuses and statuses <= {"failed", "cancelled", "pending"}
    assert not (root / "data").exists()
    assert not (root / ".kedro-jobs" / "groups" / job["id"]).exists()


@pytest.mark.parametrize(
    ("lease", "nap", "args"),
    [
        # The settings' 60 s lease, the template's 900 s timeout and rate(1 minute) sweeper.
        pytest.param(60, 100.0, ("--consumer-timeout", "900"),
                     marks=[pytest.mark.slow, pytest.mark.timeout(600)], id="template-defaults"),
        pytest.param(10, 25.0, ("--consumer-timeout", "60", "--sweep-every", "2"),
                     marks=pytest.mark.slow, id="short-timings"),
    ],
)  # fmt: skip
def test_a_group_whose_consumer_is_killed_is_taken_over_alone(
    tmp_path: Path, lease: int, nap: float, args: tuple[str, ...]
) -> None:
    """Three branch groups mid-node on three consumers; one consumer SIGKILLed. A running
    sibling notices the dead group at its heartbeat once the group's lease ran out and sends
    its message again: the group runs again from its first node on another consumer, its
    siblings run once, the job completes with the one-worker result. The takeover's time is
    printed (run with -s) against the queue's visibility timeout, which the dead worker's
    own message would have waited."""
    env, _, record = _stack_env(tmp_path)
    env["JOB_LEASE_SECONDS"] = str(lease)
    with running_local_stack(tmp_path / "dev.log", workers=3, env=env, args=args) as stack:
        api = stack.client()
        sqs = stack.aws("sqs")
        queue = sqs.get_queue_url(QueueName="kedro-jobs-queue")["QueueUrl"]
        visibility = int(
            sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["VisibilityTimeout"])[
                "Attributes"
            ]["VisibilityTimeout"]
        )
        job = api.post(
            "/api/v1/jobs", json={"pipeline_name": "branches", "parameters": {"pause": nap}}
        ).json()
        until("the three branches in fit", lambda: _fitting(api, job["id"]), 90)
        busy = until("three busy consumers", lambda: len(busy_consumers(stack)) == 3, 30)
        assert busy
        os.kill(busy_consumers(stack)[0], signal.SIGKILL)
        killed = time.monotonic()
        taken = until("a group taken over", lambda: _taken_over(api, job["id"]), 10 * lease + 120)
        takeover = time.monotonic() - killed
        done = wait_for(api, job["id"], timeout=nap + 10 * lease + 120)
        finished = time.monotonic() - killed
    assert done["status"] == "completed", done["error_message"]
    assert done["results"] == {"summary": {"total": 9.0, "branches": 3}}
    (dead,) = [g for g, run in done["groups"].items() if run["runs"] == 2]
    name = next(g["name"] for g in done["fan_out"]["groups"] if g["id"] == dead)
    branch = name[-1]  # the group is named after its first node, prep_<branch>
    ran = record.read_text().split()
    for node in ("prep_a", "fit_a", "prep_b", "fit_b", "prep_c", "fit_c"):
        assert ran.count(node) == (2 if node.endswith(branch) else 1), ran
    assert ran.count("report") == 1
    assert taken and takeover < visibility
    print(  # the figures for docs/fan-out.md (run with -s)
        f"\nlease {lease} s, visibility timeout {visibility} s: group {dead} taken over "
        f"{takeover:.1f} s after its consumer was killed; job completed {finished:.1f} s after"
    )


def _fitting(api: Any, job_id: str) -> bool:
    record = _branches_running(api, job_id)
    groups = (record or {}).get("groups") or {}
    return bool(record) and all(
        (g["current_node"] or "").startswith("fit_") for g in groups.values() if g["nodes"] == 2
    )


def _taken_over(api: Any, job_id: str) -> bool:
    record = api.get(f"/api/v1/jobs/{job_id}").json()
    return any(g["runs"] == 2 for g in (record.get("groups") or {}).values())
