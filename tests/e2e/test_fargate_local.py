"""`make dev` runs a `"compute": "fargate"` job as a local process of the task's entry point
(python -m kedro_jobs.consumer.task <job-id>), and stops those processes when it stops."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from kedro_jobs_local.dev_stack import running_local_stack

SLOW = {"pipeline_name": "reporting", "parameters": {"reporting": {"delay_seconds": 60}}}


def _job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()
    return body


def _wait(client: httpx.Client, job_id: str, statuses: set[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = _job(client, job_id)
        if job["status"] in statuses:
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}: {job}"
        time.sleep(0.3)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def _submit(client: httpx.Client, body: dict[str, Any]) -> str:
    response = client.post("/api/v1/jobs", json={**body, "compute": "fargate"})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def test_a_fargate_job_runs_as_a_local_task_and_none_outlives_the_stack(tmp_path: Path) -> None:
    with running_local_stack(tmp_path / "dev.log", workers=1) as stack, stack.client() as client:
        done = _wait(
            client, _submit(client, {"pipeline_name": "hello"}), {"completed", "failed"}, 120
        )
        assert done["status"] == "completed", done
        assert done["compute"] == "fargate"
        [segment] = done["segments"]
        assert segment["compute"] == "fargate"
        assert segment["invocation"].startswith("local")
        assert done["task_arn"] == segment["invocation"]  # the task names itself as launched

        # A task still running when make dev stops is stopped with it.
        slow = _submit(client, SLOW)
        running = _wait(client, slow, {"running", "completed", "failed"}, 120)
        assert running["status"] == "running", running
        pid = int(running["task_arn"].split(":", 1)[1])
        assert _alive(pid)
        assert any(p.pid == pid for p in stack.processes())  # below make dev, not detached
    # running_local_stack has checked that nothing it started is left; this task neither.
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), f"the task process {pid} outlived make dev"
