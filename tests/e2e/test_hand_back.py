"""A graceful stop of `make dev` with jobs running hands them back at once: a job whose node
ends within the grace saves a checkpoint at that node boundary, one whose node goes on is
stopped and goes on from its last checkpoint; the next `make dev` takes both up at once (a
hand-off, not a lost consumer whose lease must expire) and they complete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from kedro_jobs_local.dev_stack import running_local_stack

from .conftest import until, wait_for


def _submit(client: httpx.Client, delay: float, release: Path | None = None) -> str:
    """A reporting job whose slow node takes ``delay`` seconds, or with ``release``, until
    the test creates that file (``delay`` at most)."""
    slow: dict[str, Any] = {"delay_seconds": delay}
    if release is not None:
        slow["release_file"] = str(release)
    body = {"pipeline_name": "reporting", "parameters": {"reporting": slow}}
    job_id: str = client.post("/api/v1/jobs", json=body).json()["id"]
    return job_id


def _running(client: httpx.Client, job_id: str, node: str) -> dict[str, Any] | None:
    job: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()
    current = (job.get("progress") or {}).get("current_node")
    return job if job["status"] == "running" and current == node else None


def test_a_stop_hands_running_jobs_back_and_the_next_start_goes_on(tmp_path: Path) -> None:
    state = tmp_path / "state"
    log = tmp_path / "dev.log"
    with running_local_stack(log, workers=2, state_dir=state) as stack, stack.client() as client:
        # Its slow node outlasts the stop's grace: it runs until released, in the next start.
        long = _submit(client, 120, release=tmp_path / "release")
        until("the long job's slow node", lambda: _running(client, long, "rank_regions"), 60)
        short = _submit(client, 1)  # its slow node ends within the grace
        until("the short job's slow node", lambda: _running(client, short, "rank_regions"), 60)
    # The block's end stopped make dev (SIGTERM), as Ctrl-C does.

    with running_local_stack(log, workers=2, state_dir=state) as stack, stack.client() as client:
        (tmp_path / "release").touch()
        done = {job_id: wait_for(client, job_id, timeout=120) for job_id in (short, long)}
    assert {j["status"] for j in done.values()} == {"completed"}, done

    # The short one went on from the boundary after its slow node: that node ran once.
    first, second = done[short]["segments"]
    assert first["ended"] == "continued"
    assert first["nodes"] == ["rp_generate_orders", "rp_clean_orders", "rank_regions"]
    assert second["nodes"] == ["write_report"]
    assert [(n["name"], n["segment"]) for n in done[short]["nodes"]][-2:] == [
        ("rank_regions", 1), ("write_report", 2)
    ]  # fmt: skip
    assert done[short]["results"]["report"].startswith("# Top regions")
    # The long one was stopped mid-node and handed back, not left to a lease's expiry: its
    # next claim is a continuation, not a lost attempt.
    first, second = done[long]["segments"]
    assert first["ended"] == "handed_back" and first["nodes"] == [
        "rp_generate_orders", "rp_clean_orders"
    ]  # fmt: skip
    assert done[long]["attempts"] == 2
