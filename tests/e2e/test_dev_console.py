"""`make dev`'s console as a user sees it: a banner with the web page, the CLI and the AWS
variables to paste, then one line per job state change; the processes' full logs go to a file
(`--verbose` puts them back on the console)."""

from __future__ import annotations

from pathlib import Path

from kedro_jobs_local.dev_stack import running_local_stack

from .conftest import until, wait_for


def test_the_console_shows_one_line_per_job_state_change(tmp_path: Path) -> None:
    log = tmp_path / "console.txt"
    state = tmp_path / "state"
    with (
        running_local_stack(log, workers=1, state_dir=state, verbose=False) as stack,
        stack.client() as client,
    ):
        ok = client.post("/api/v1/jobs", json={"pipeline_name": "hello"}).json()["id"]
        bad = client.post(
            "/api/v1/jobs",
            json={"pipeline_name": "data_loading", "parameters": {"data_loading": {"n_rows": -1}}},
        ).json()["id"]
        assert wait_for(client, ok)["status"] == "completed"
        assert wait_for(client, bad)["status"] == "failed"
        until(
            "both jobs' ends on the console",
            lambda: f"{bad[:8]}  data_loading  failed: ValueError" in log.read_text(),
            timeout=30,
        )
        console = log.read_text()
    banner, _, changes = console.partition("One line per job state change follows")
    assert f"web page       {stack.api}/" in banner
    assert f"KEDRO_JOBS_API={stack.api}" in banner and "kedro-jobs submit" in banner
    assert "export AWS_ACCESS_KEY_ID=" in banner and "AWS_DEFAULT_REGION=us-east-1" in banner
    lines = [line for line in changes.splitlines()[2:] if f"{ok[:8]}  hello" in line]
    assert [line.split("  ", 3)[-1] for line in lines][-2:][0] == "running"
    assert lines[-1].split("  ", 3)[-1].startswith("completed in ")
    # The consumers' own log lines are in the state folder's file, not on the console.
    assert '"message":"job finished"' not in console
    assert '"message":"job finished"' in (state / "dev.log").read_text()
    assert f"full logs are in {state / 'dev.log'}" in console
