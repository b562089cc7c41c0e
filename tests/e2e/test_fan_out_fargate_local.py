"""`make dev` runs a fanned-out job's group too long for an invocation as a local process of
the Fargate task's entry point (``python -m kedro_jobs.consumer.task <job-id> --group ...``),
as a `"compute": "fargate"` job's: first moved there when its invocation's deadline stops it,
then, its time noted, planned there from the start; the other groups run on the consumers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro_jobs_local.dev_stack import running_local_stack
from tests.support.fanout_project import write_fanout_project

from .conftest import wait_for

RESULTS = {"summary": {"total": 9.0, "branches": 3}}


def _where(job: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """Each group's name: where it ran, and how many runs it took."""
    names = {g["id"]: g["name"] for g in job["fan_out"]["groups"]}
    return {names[gid]: (g["compute"], g["runs"]) for gid, g in job["groups"].items()}


def test_long_groups_run_as_local_fargate_tasks(tmp_path: Path) -> None:
    project = write_fanout_project(tmp_path / "project")
    env = {
        "KEDRO_PROJECT_PATH": str(project),
        "FAN_OUT_MIN_GROUP_SECONDS": "0",
        # The local consumers' invocations last 60 s: a 55 s margin leaves a group 5 s.
        "TIMEOUT_MARGIN_SECONDS": "55",
    }
    body = {"pipeline_name": "branches", "parameters": {"prep_pause": 8.0}}
    with (
        running_local_stack(tmp_path / "dev.log", workers=3, env=env) as stack,
        stack.client() as api,
    ):
        first = wait_for(api, api.post("/api/v1/jobs", json=body).json()["id"], timeout=180)
        assert first["status"] == "completed", first["error_message"]
        assert first["results"] == RESULTS
        # Each branch's first node outlived the invocation: moved, run again as a task.
        assert _where(first) == {
            "prep_a": ("fargate", 2), "prep_b": ("fargate", 2), "prep_c": ("fargate", 2),
            "report": ("lambda", 1),
        }  # fmt: skip
        tasks = [g for g in first["groups"].values() if g["compute"] == "fargate"]
        assert all(g["worker"].startswith("local:") for g in tasks)  # a local task each

        second = wait_for(api, api.post("/api/v1/jobs", json=body).json()["id"], timeout=180)
        assert second["status"] == "completed", second["error_message"]
        assert second["results"] == RESULTS
        # Their time was noted: planned on Fargate from the start and run there once, or,
        # where a sibling's write of the pipeline's durations (one object, last writer wins)
        # dropped it, moved there again at the deadline. The last writer's is kept.
        planned = {g["name"] for g in second["fan_out"]["groups"] if g.get("compute")}
        assert planned and planned <= {"prep_a", "prep_b", "prep_c"}
        assert _where(second) == {
            name: ("fargate", 1 if name in planned else 2)
            for name in ("prep_a", "prep_b", "prep_c")
        } | {"report": ("lambda", 1)}
