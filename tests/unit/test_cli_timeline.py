"""The CLI's node timeline (``kedro-jobs status``): where each node ran."""

from __future__ import annotations

from rich.console import Console

from kedro_jobs.cli.timeline import timeline_table


def shown(job: dict[str, object]) -> str:
    table = timeline_table(job)
    assert table is not None
    console = Console(width=120, record=True)
    console.print(table)
    return console.export_text()


def test_a_fanned_out_jobs_nodes_name_their_group_and_worker() -> None:
    text = shown({"status": "running", "nodes": [
        {"name": "prep_b", "status": "completed", "started_at": "2026-01-01T12:00:00Z",
         "duration": 1.5, "group": "g2", "worker": "req-7f3a/1c2d3e4f"},
        {"name": "fit_b", "status": "failed", "started_at": "2026-01-01T12:00:01.5Z",
         "duration": 0.25, "group": "g2", "worker": "req-7f3a/1c2d3e4f"},
    ]})  # fmt: skip
    rows = [line for line in text.splitlines() if line.startswith(("prep_b", "fit_b"))]
    assert len(rows) == 2
    assert all("g2 req-7f3a" in row and "1c2d3e4f" not in row for row in rows)
    assert "1.50 s" in rows[0] and "failed" in rows[1]


def test_a_one_worker_jobs_nodes_name_their_segment() -> None:
    text = shown({"status": "completed", "nodes": [
        {"name": "a", "status": "completed", "started_at": "2026-01-01T12:00:00Z",
         "duration": 1.0, "segment": 2, "compute": "fargate"},
    ]})  # fmt: skip
    assert "fargate #2" in text
