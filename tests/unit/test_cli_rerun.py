"""What `kedro-jobs status` says of reruns from failure: a rerun's reused nodes and the job it
reused them from; for a stopped job that kept its nodes' outputs, the command and until when."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from kedro_jobs.cli.render import show_job

ID = "0f1e2d3c-0000-4000-8000-000000000001"


def _shown(**job: Any) -> str:
    console = Console(width=200, record=True, color_system=None)
    record = {
        "id": ID,
        "pipeline_name": "reporting",
        "status": "failed",
        "created_at": "2026-12-07T06:00:00.000000Z",
        **job,
    }
    show_job(console, record)
    return console.export_text()


def test_a_rerun_names_its_reused_nodes_and_their_job() -> None:
    nodes = [
        {"name": "rp_generate_orders", "status": "reused"},
        {"name": "rank_regions", "status": "reused"},
        {"name": "write_report", "status": "completed", "duration": 0.1,
         "started_at": "2026-12-07T06:00:01Z", "finished_at": "2026-12-07T06:00:01.1Z"},
    ]  # fmt: skip
    text = _shown(status="completed", reused_from="a-failed-job", retry_of="a-failed-job",
                  nodes=nodes)  # fmt: skip
    assert "from job a-failed-job: rp_generate_orders, rank_regions (not run again)" in text
    assert "write_report" in text


def test_a_stopped_job_that_kept_its_outputs_says_how_to_rerun_it() -> None:
    text = _shown(reusable_until="2026-12-14T05:00:00.000000Z")
    assert f"kedro-jobs retry {ID[:8]} --from-failure (until 2026-12-14" in text
    # Nothing kept, or it completed: no such line.
    assert "--from-failure" not in _shown()
    assert "--from-failure" not in _shown(status="completed", reusable_until="2026-12-14T05:00Z")
