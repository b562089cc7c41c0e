"""The `kedro-jobs` console script, run as a user runs it, against the local stack."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any

import boto3
import pytest

from kedro_jobs.core.models import Job, OutputInfo, utcnow
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import to_item
from kedro_jobs_local.dev_stack import LocalStack

from .conftest import TERMINAL, poll_intervals

SCRIPT = Path(sys.executable).with_name("kedro-jobs")
BUCKET = "kedro-jobs-artifacts-123456789012-us-east-1"  # make dev's, fixed


def kedro_jobs(
    stack: LocalStack, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed console script, pointed at the stack through its environment variable."""
    assert SCRIPT.exists(), f"{SCRIPT} is not installed: pip install -e '.[dev]'"
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "KEDRO_JOBS_API": stack.api, "COLUMNS": "160", **(env or {})},
        check=False,
    )


def submitted_id(output: str) -> str:
    return output.split("Submitted ", 1)[1].split()[0]


def submit_held(local_stack: LocalStack, release: Path) -> str:
    """A `reporting` job whose slow node runs until ``release`` appears (120 s at most): still
    running when the test acts on it, however loaded the machine. Returns its id."""
    slow = f"reporting.delay_seconds=120,reporting.release_file={release}"
    run = kedro_jobs(local_stack, "submit", "reporting", "--params", slow, "--json")
    assert run.returncode == 0, run.stderr
    job_id: str = json.loads(run.stdout)["id"]
    return job_id


def wait_for(
    stack: LocalStack, job_id: str, statuses: Collection[str], node: str | None = None
) -> dict[str, Any]:
    """The job once its status is one of ``statuses`` (or it runs ``node``), else as it is
    after 90 s."""
    deadline, intervals = time.monotonic() + 90, poll_intervals()
    with stack.client() as client:
        while True:
            job: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()
            running = node is not None and job["status"] == "running"
            running = running and (job.get("progress") or {}).get("current_node") == node
            if job["status"] in statuses or running or time.monotonic() > deadline:
                return job
            time.sleep(next(intervals))


def test_submit_and_watch_the_bundled_example_until_it_completes(local_stack: LocalStack) -> None:
    run = kedro_jobs(local_stack, "submit", "data_loading", "--watch", "--interval", "0.2")
    assert run.returncode == 0, run.stdout + run.stderr
    job_id = submitted_id(run.stdout)
    # A bar per node of the pipeline, then the outcome and the results.
    for node in ("generate_orders", "clean_orders", "summarise_orders"):
        assert node in run.stdout
    assert f"Job {job_id} completed" in run.stdout
    assert "rows_generated" in run.stdout
    assert wait_for(local_stack, job_id, TERMINAL)["status"] == "completed"


def test_a_failing_job_exits_non_zero_with_its_error(local_stack: LocalStack) -> None:
    run = kedro_jobs(
        local_stack, "submit", "data_loading", "--params", "data_loading.n_rows=-1", "--watch"
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "failed" in run.stdout
    assert "n_rows must be a positive integer" in run.stdout
    assert "(node: generate_orders)" in run.stdout


def test_dotted_params_arrive_nested_and_change_the_run(local_stack: LocalStack) -> None:
    run = kedro_jobs(
        local_stack,
        "submit", "data_loading", "--json",
        "--params", "data_loading.n_rows=12,data_loading.seed=5",
        "--tags", "data_loading",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout)
    assert record["parameters"] == {"data_loading": {"n_rows": 12, "seed": 5}}
    assert record["options"] == {"tags": ["data_loading"]}
    done = wait_for(local_stack, record["id"], TERMINAL)
    assert done["status"] == "completed", done
    assert done["results"]["orders_summary"]["rows_generated"] == 12

    status = kedro_jobs(local_stack, "status", record["id"])
    assert status.returncode == 0
    assert "completed" in status.stdout and '"n_rows": 12' in status.stdout

    listing = kedro_jobs(local_stack, "list", "--pipeline", "data_loading", "--limit", "50")
    assert listing.returncode == 0 and record["id"] in listing.stdout


def test_cancel_a_running_job_then_retry_it(local_stack: LocalStack, tmp_path: Path) -> None:
    # Still running when the cancel comes, and no longer.
    release = tmp_path / "release"
    job_id = submit_held(local_stack, release)
    assert wait_for(local_stack, job_id, {"running", *TERMINAL})["status"] == "running"

    # Follow the log from another terminal while the job is cancelled.
    follow = subprocess.Popen(
        [str(SCRIPT), "logs", job_id, "--follow", "--interval", "0.3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KEDRO_JOBS_API": local_stack.api},
    )
    try:
        cancel = kedro_jobs(local_stack, "cancel", job_id)
        assert cancel.returncode == 0, cancel.stderr
        assert "Cancel" in cancel.stdout
        release.touch()  # the node ends; the cancel stops the job before the next one
        watch = kedro_jobs(local_stack, "watch", job_id, "--interval", "0.3")
        assert watch.returncode == 1, watch.stdout
        assert f"Job {job_id} cancelled" in watch.stdout
        out, _ = follow.communicate(timeout=60)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert follow.returncode == 0
    assert "reporting" in out  # the run's log, printed once it was there

    again = kedro_jobs(local_stack, "cancel", job_id)
    assert again.returncode == 3
    assert "HTTP 409" in again.stderr

    retry = kedro_jobs(local_stack, "retry", job_id)
    assert retry.returncode == 0, retry.stderr
    new_id = retry.stdout.split("Retrying as ", 1)[1].split()[0]
    with local_stack.client() as client:
        assert client.get(f"/api/v1/jobs/{new_id}").json()["retry_of"] == job_id
    # It would sleep again: stop it (pending: at once; running: at the next node).
    assert kedro_jobs(local_stack, "cancel", new_id).returncode == 0
    release.touch()  # if it got as far as its slow node
    assert wait_for(local_stack, new_id, TERMINAL)["status"] == "cancelled"


def test_outputs_of_a_job_that_saved_nothing(local_stack: LocalStack, tmp_path: Path) -> None:
    # The bundled example's hello pipeline keeps every dataset in memory.
    run = kedro_jobs(local_stack, "submit", "hello", "--watch", "--interval", "0.2")
    job_id = submitted_id(run.stdout)
    listed = kedro_jobs(local_stack, "outputs", job_id)
    assert listed.returncode == 0, listed.stderr
    assert f"Job {job_id} saved no datasets (completed)" in listed.stdout
    assert json.loads(kedro_jobs(local_stack, "outputs", job_id, "--json").stdout) == []
    download = kedro_jobs(local_stack, "outputs", job_id, "--download", str(tmp_path / "out"))
    assert download.returncode == 0, download.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_outputs_download_saves_each_file(local_stack: LocalStack, tmp_path: Path) -> None:
    # A finished job that saved a dataset, as the consumer records one: the file in the
    # stack's bucket, the job in the table.
    content = b"region,revenue\nnorth,1.5\n"
    key = f"data/cli-test/{uuid.uuid4()}/ranking.csv"
    endpoint = {"endpoint_url": local_stack.endpoint_url, "region_name": "us-east-1"}
    boto3.client("s3", **endpoint).put_object(Bucket=BUCKET, Key=key, Body=content)
    folder = f"data/cli-test/{uuid.uuid4()}/parts"  # a folder output: two partitions
    for part in ("p1.csv", "2026/p2.csv"):
        body = part.encode()
        boto3.client("s3", **endpoint).put_object(Bucket=BUCKET, Key=f"{folder}/{part}", Body=body)
    now = utcnow()
    job = Job(
        id=str(uuid.uuid4()),
        pipeline_name="reporting",
        status=JobStatus.COMPLETED,
        created_at=now,
        started_at=now,
        completed_at=now,
        execution_time=0.1,
        outputs=[
            OutputInfo(
                name="ranking",
                type="pandas.CSVDataset",
                uri=f"s3://{BUCKET}/{key}",
                size=len(content),
            ),
            OutputInfo(
                name="parts",
                type="partitions.PartitionedDataset",
                uri=f"s3://{BUCKET}/{folder}",
                size=17,
                files=2,
            ),
        ],
    )
    boto3.client("dynamodb", **endpoint).put_item(TableName="kedro-jobs-jobs", Item=to_item(job))

    listed = kedro_jobs(local_stack, "outputs", job.id)
    assert listed.returncode == 0, listed.stderr
    assert "ranking" in listed.stdout and "pandas.CSVDataset" in listed.stdout

    saved = kedro_jobs(local_stack, "outputs", job.id, "--download", str(tmp_path / "out"))
    assert saved.returncode == 0, saved.stderr
    assert "Saved ranking to" in saved.stdout
    assert (tmp_path / "out" / "ranking.csv").read_bytes() == content
    # A folder: each of its files, at its path in the folder.
    assert (tmp_path / "out" / "parts" / "p1.csv").read_bytes() == b"p1.csv"
    assert (tmp_path / "out" / "parts" / "2026" / "p2.csv").read_bytes() == b"2026/p2.csv"


def test_errors_print_the_apis_detail(local_stack: LocalStack) -> None:
    unknown = kedro_jobs(local_stack, "status", "no-such-job")
    assert unknown.returncode == 3
    assert "HTTP 404" in unknown.stderr and "not found" in unknown.stderr

    bad = kedro_jobs(local_stack, "submit", "no_such_pipeline")
    assert bad.returncode == 3
    assert "Unknown pipeline 'no_such_pipeline'" in bad.stderr
    assert "data_loading" in bad.stderr  # the known ones are listed

    invalid = kedro_jobs(local_stack, "submit", "data_loading", "--env", "not a valid env!")
    assert invalid.returncode == 3
    assert "HTTP 422" in invalid.stderr and "env" in invalid.stderr

    usage = kedro_jobs(local_stack, "submit", "data_loading", "--params", "n_rows")
    assert usage.returncode == 2 and "must be key=value" in usage.stderr


@pytest.mark.parametrize("flag", [True, False])
def test_the_api_url_and_token_come_from_flags_or_the_environment(
    local_stack: LocalStack, flag: bool
) -> None:
    # The stack's own output form (`.../api/v1`) works too; with no server there it says so.
    args = ["--api", f"{local_stack.api}/api/v1", "list"] if flag else ["list"]
    ok = kedro_jobs(local_stack, *args, env={"KEDRO_JOBS_TOKEN": "not-checked-locally"})
    assert ok.returncode == 0, ok.stderr
    down = kedro_jobs(local_stack, "list", env={"KEDRO_JOBS_API": "http://127.0.0.1:9"})
    assert down.returncode == 3 and "cannot reach the API" in down.stderr


def test_the_token_is_sent_as_a_bearer_header(local_stack: LocalStack) -> None:
    # The local API has no authorizer; what the client sends is checked on a tiny server.
    import http.server
    import threading

    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            body = b'{"jobs": [], "next_cursor": null}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        api = f"http://127.0.0.1:{server.server_address[1]}"
        flag = kedro_jobs(local_stack, "--api", api, "--token", "from-flag", "list")
        env = kedro_jobs(local_stack, "list", env={"KEDRO_JOBS_API": api, "KEDRO_JOBS_TOKEN": "e"})
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert flag.returncode == env.returncode == 0
    assert seen == ["Bearer from-flag", "Bearer e"]


# --- The node timeline, short ids, pipelines, paging, the version (issue: operate) -----------


def test_status_shows_each_nodes_duration_and_takes_the_short_id(local_stack: LocalStack) -> None:
    run = kedro_jobs(local_stack, "submit", "hello", "--watch", "--interval", "0.2")
    assert run.returncode == 0, run.stdout + run.stderr
    job_id = submitted_id(run.stdout)
    # The watch printed each node's duration next to its bar.
    assert any(
        "pick" in line and " s" in line.split("pick", 1)[1] for line in run.stdout.splitlines()
    )
    status = kedro_jobs(local_stack, "status", job_id[:8])
    assert status.returncode == 0, status.stderr
    assert job_id in status.stdout
    # A row per node of the timeline: name, status, duration, where it ran.
    rows = {line.split()[0]: line for line in status.stdout.splitlines() if "lambda #1" in line}
    assert set(rows) == {"pick", "double"}, status.stdout
    assert all("completed" in row and " s " in row for row in rows.values())
    # Its times say their zone.
    assert re.search(r"created\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z+\-0-9]+", status.stdout)
    as_json = json.loads(kedro_jobs(local_stack, "status", job_id[:8], "--json").stdout)
    assert [n["name"] for n in as_json["nodes"]] == ["pick", "double"]


def test_a_running_jobs_status_shows_the_running_nodes_time_so_far(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    # One `status` sees it running (the wait for it asks the API, not a new CLI).
    release = tmp_path / "release"
    job_id = submit_held(local_stack, release)
    try:
        job = wait_for(local_stack, job_id, TERMINAL, node="rank_regions")
        assert job["progress"]["current_node"] == "rank_regions", job
        status = kedro_jobs(local_stack, "status", job_id)
        rows = [r for r in status.stdout.splitlines() if r.split()[:1] == ["rank_regions"]]
        # Its row: running, with its time so far.
        assert rows and "running" in rows[0] and " s" in rows[0], status.stdout
    finally:
        kedro_jobs(local_stack, "cancel", job_id)
        release.touch()
        wait_for(local_stack, job_id, TERMINAL)


def test_an_ambiguous_or_unknown_short_id_is_a_clear_error(local_stack: LocalStack) -> None:
    now = utcnow()
    dynamodb = boto3.client(
        "dynamodb", endpoint_url=local_stack.endpoint_url, region_name="us-east-1"
    )
    prefix = uuid.uuid4().hex[:8]
    for suffix in ("-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "-bbbb-4bbb-8bbb-bbbbbbbbbbbb"):
        job = Job(id=prefix + suffix, pipeline_name="hello", status=JobStatus.COMPLETED,
                  created_at=now, updated_at=now)  # fmt: skip
        dynamodb.put_item(TableName="kedro-jobs-jobs", Item=to_item(job))
    ambiguous = kedro_jobs(local_stack, "status", prefix)
    assert ambiguous.returncode == 2
    assert "ambiguous" in ambiguous.stderr and prefix + "-aaaa" in ambiguous.stderr
    unique = kedro_jobs(local_stack, "status", prefix + "-b")
    assert unique.returncode == 0 and prefix + "-bbbb" in unique.stdout
    unknown = kedro_jobs(local_stack, "status", "0000dead")
    assert unknown.returncode == 3 and "404" in unknown.stderr


def test_list_by_status_prints_a_more_hint_that_works(local_stack: LocalStack) -> None:
    # Three completed jobs to page through (submitted through the API: submitting with the
    # CLI is tested above).
    with local_stack.client() as client:
        ids = [client.post("/api/v1/jobs", json={"pipeline_name": "hello"}).json()["id"]
               for _ in range(3)]  # fmt: skip
    assert [wait_for(local_stack, i, TERMINAL)["status"] for i in ids] == ["completed"] * 3
    first = kedro_jobs(local_stack, "list", "--status", "completed", "--limit", "2")
    assert first.returncode == 0
    hint = next(line for line in first.stdout.splitlines() if line.startswith("More: "))
    assert "--status completed" in hint and "--limit 2" in hint
    args = hint.removeprefix("More: kedro-jobs ").split()
    second = kedro_jobs(local_stack, *args)
    assert second.returncode == 0, second.stderr
    assert "completed" in second.stdout and "failed" not in second.stdout


def test_pipelines_and_version(local_stack: LocalStack) -> None:
    listed = kedro_jobs(local_stack, "pipelines")
    assert listed.returncode == 0, listed.stderr
    for name in ("data_loading", "feature_engineering", "reporting", "hello"):
        assert name in listed.stdout
    assert '"x": 21' in listed.stdout  # hello's parameter default
    version = kedro_jobs(local_stack, "--version")
    assert version.returncode == 0 and version.stdout.startswith("kedro-jobs ")


def test_list_fits_a_narrow_terminal_with_short_ids(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    # Running until the test releases its slow node, after the listing.
    release = tmp_path / "release"
    job_id = submit_held(local_stack, release)
    wait_for(local_stack, job_id, {"running"})
    try:
        listed = kedro_jobs(local_stack, "list", "--limit", "3", env={"COLUMNS": "80"})
    finally:
        release.touch()
    assert listed.returncode == 0
    lines = [line for line in listed.stdout.splitlines() if line.strip()]
    # The table fits; the next page's command stays whole on its line, to be copied.
    table = [line for line in lines if not line.startswith("More: ")]
    assert all(len(line) <= 80 for line in table), listed.stdout
    assert any(job_id[:8] in line and "running" in line for line in lines), listed.stdout
    short_id = lines[1].split()[0]
    assert len(short_id) == 8
    assert kedro_jobs(local_stack, "status", short_id).returncode == 0
