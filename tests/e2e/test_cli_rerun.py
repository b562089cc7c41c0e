"""`kedro-jobs retry ID --from-failure` against the local stack (`make dev`, the bundled example
project): a reporting job cancelled while its slow third node runs stops after it and keeps
what its three completed nodes made; the rerun runs only the last node and ends with the
results of an uninterrupted run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kedro_jobs_local.dev_stack import LocalStack

from .conftest import until, wait_for

SCRIPT_PATH = os.path.join(os.path.dirname(sys.executable), "kedro-jobs")
# rank_regions runs until the test releases it (this long at most): the cancel arrives while
# it runs, however loaded the machine.
RELEASE_LIMIT = 120.0


def kedro_jobs(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    assert os.path.exists(SCRIPT_PATH), f"{SCRIPT_PATH} is not installed"
    return subprocess.run(
        [SCRIPT_PATH, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KEDRO_JOBS_API": stack.api, "COLUMNS": "200"},
        check=False,
    )


def _submit(stack: LocalStack, delay: float, release: Path | None = None) -> str:
    slow: dict[str, Any] = {"delay_seconds": delay}
    if release is not None:
        slow["release_file"] = str(release)
    with stack.client() as client:
        body = {"pipeline_name": "reporting", "parameters": {"reporting": slow}}
        answer = client.post("/api/v1/jobs", json=body)
        assert answer.status_code == 202, answer.text
        job_id: str = answer.json()["id"]
        return job_id


def _record(stack: LocalStack, job_id: str) -> dict[str, Any]:
    with stack.client() as client:
        job: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()
        return job


def test_retry_from_failure_runs_only_the_nodes_a_cancel_left(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    with local_stack.client() as client:
        uninterrupted = wait_for(client, _submit(local_stack, 0.0))
    assert uninterrupted["status"] == "completed"

    release = tmp_path / "release"
    job_id = _submit(local_stack, RELEASE_LIMIT, release)
    until(
        "rank_regions running",
        lambda: (
            (_record(local_stack, job_id).get("progress") or {}).get("current_node")
            == "rank_regions"
        ),
        60,
    )
    cancel = kedro_jobs(local_stack, "cancel", job_id)
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    release.touch()  # rank_regions ends; the cancel stops the job before write_report
    with local_stack.client() as client:
        cancelled = wait_for(client, job_id)
    assert cancelled["status"] == "cancelled"
    assert cancelled["reusable_until"]
    status = kedro_jobs(local_stack, "status", job_id)
    assert f"kedro-jobs retry {job_id[:8]} --from-failure" in status.stdout, status.stdout

    rerun = kedro_jobs(local_stack, "retry", job_id[:8], "--from-failure", "--watch")

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "Rerunning from failure as" in rerun.stdout
    assert f"The nodes job {job_id} completed are not run again" in rerun.stdout
    new_id = rerun.stdout.split("Rerunning from failure as ", 1)[1].split()[0]
    done = _record(local_stack, new_id)
    assert done["status"] == "completed" and done["retry_of"] == job_id
    assert done["reused_from"] == job_id
    assert [(n["name"], n["status"]) for n in done["nodes"]] == [
        ("rp_generate_orders", "reused"),
        ("rp_clean_orders", "reused"),
        ("rank_regions", "reused"),
        ("write_report", "completed"),
    ]
    # Its one segment ran the last node only.
    assert [s["nodes"] for s in done["segments"]] == [["write_report"]]
    assert done["results"] == uninterrupted["results"]

    again = kedro_jobs(local_stack, "retry", new_id, "--from-failure")
    assert again.returncode != 0
    assert "it completed, so no node is left to run" in again.stdout + again.stderr
