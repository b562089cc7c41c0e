"""Fan-out through `make dev`: moto's Step Functions runs the template's state machine, the
local consumers run a job's groups side by side, and the job completes with what a one-worker
run gives; ``fan_out: false`` runs it on one worker."""

from __future__ import annotations

from pathlib import Path

from kedro_jobs_local.dev_stack import running_local_stack
from tests.support.fanout_project import write_fanout_project

from .conftest import wait_for


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
