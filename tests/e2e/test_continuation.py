"""Jobs longer than one invocation, through `make dev --consumer-timeout 60` over HTTP: three
nodes passing in-memory values, each longer than half of what an invocation leaves a job,
complete in segments with the result of an uninterrupted run, and a cancel between segments
ends the job with its last node never run.

At the settings' defaults (a 10 s timeout margin leaves a 60 s invocation 50 s; a node with no
estimate needs 30 s) the nodes take 33 s, 99 s in all: marked slow (`make test-slow`). `make
test` runs the same proportions a quarter as long, with the margins injected through the
settings (TIMEOUT_MARGIN_SECONDS, CONTINUE_MARGIN_SECONDS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kedro_jobs_local.counting_project import counting_stack_env, executions
from kedro_jobs_local.dev_stack import running_local_stack

from .conftest import TERMINAL, until


@pytest.mark.parametrize(
    ("node_seconds", "settings"),
    [
        pytest.param(33, {}, marks=pytest.mark.slow, id="default-margins"),
        # A 15 s budget, a 9 s need for a node not timed yet, 10 s nodes.
        pytest.param(
            10,
            {"TIMEOUT_MARGIN_SECONDS": "45", "CONTINUE_MARGIN_SECONDS": "9"},
            id="short-margins",
        ),
    ],
)
def test_three_long_nodes_complete_in_segments_and_a_cancel_between_them_ends_a_job(
    tmp_path: Path, node_seconds: int, settings: dict[str, str]
) -> None:
    env, record = counting_stack_env(tmp_path, "segmented_project")
    with running_local_stack(tmp_path / "dev.log", workers=3, env={**env, **settings}) as stack:
        api = stack.client()

        def submit(x: int, seconds: float) -> str:
            body = {"pipeline_name": "steps", "parameters": {"x": x, "seconds": seconds}}
            response = api.post("/api/v1/jobs", json=body)
            assert response.status_code == 202, response.text
            job_id: str = response.json()["id"]
            return job_id

        def job(job_id: str) -> dict[str, Any]:
            body: dict[str, Any] = api.get(f"/api/v1/jobs/{job_id}").json()
            return body

        long_job = submit(1, node_seconds)
        to_cancel = submit(10, node_seconds)
        quick = submit(1, 0)  # the same pipeline, uninterrupted

        # Cancelled once its first segment has handed off (it is then between segments, or
        # running its second, and stops at the next boundary).
        until("a first segment", lambda: job(to_cancel).get("segments"), 3 * node_seconds)
        assert api.post(f"/api/v1/jobs/{to_cancel}/cancel").status_code == 200

        finished = until(
            "all three jobs finished",
            lambda: all(job(j)["status"] in TERMINAL for j in (long_job, to_cancel, quick)),
            5 * node_seconds + 60,
        )
        assert finished
        done, cancelled, whole = job(long_job), job(to_cancel), job(quick)
        assert whole["status"] == "completed" and len(whole["segments"]) == 1, whole
        assert done["status"] == "completed", done
        assert done["results"] == whole["results"] == {"three": 4}
        segments = done["segments"]
        assert len(segments) >= 2, segments
        assert [n for s in segments for n in s["nodes"]] == ["step1", "step2", "step3"]
        assert segments[-1]["ended"] == "completed"
        assert all(s["ended"] == "continued" for s in segments[:-1])
        assert done["progress"]["completed_nodes"] == 3
        assert cancelled["status"] == "cancelled", cancelled
        counted = executions(record)
        # Every node of the long job ran once; the cancelled job's last node never ran.
        assert counted["step 1"] == 2 and counted["step 2"] == 2 and counted["step 3"] == 2
        assert counted["step 10"] == 1 and counted["step 11"] <= 1 and counted["step 12"] == 0
        log = api.get(f"/api/v1/jobs/{long_job}/logs").text
        assert log.index("step1") < log.index("step2") < log.index("step3")
