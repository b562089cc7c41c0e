"""Fan-out through `make dev`: moto's Step Functions runs the template's state machine, the
local consumers run a job's groups side by side, and the job completes with what a one-worker
run gives; ``fan_out: false`` runs it on one worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kedro_jobs.core.states import TERMINAL
from kedro_jobs_local.dev_stack import running_local_stack
from tests.support.fanout_project import write_fanout_project

from .conftest import until, wait_for


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
