"""README.md works as written: every command block in it is either run here, against `make dev`
(the local stack on random ports: its addresses replace the README's 127.0.0.1:8000 and :5000),
or named below with the reason it cannot run on this machine. A new block fails this test until
it is one or the other, so the README cannot drift from what the service does.

The runnable blocks run in order in one bash (variables such as JOB_ID flow from one to the
next, as for a reader pasting them), bounded in time, in their own process group, in a
temporary folder. Every HTTP answer curl gets is recorded and must be a success, except the
ones the README itself says fail (a cancel of a finished job: 409)."""

from __future__ import annotations

import os
import pickle
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from kedro_jobs_local.dev import parse_args
from kedro_jobs_local.dev_stack import LocalStack

from .conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
VENV = Path(sys.executable).parent.parent
RUN_SECONDS = 300

# Blocks not run here, by their first line, and why.
NOT_RUN = {
    "make dev    # the whole system locally": "starts the stack this test runs (and make test)",
    "functions/kedro_jobs/core/        shared core": "the layout, not commands",
    "make dev                               # API on": "make dev's options: checked by "
    "test_make_dev_options_are_make_devs",
    "docker compose -f infra/localstack": "needs Docker (LocalStack: make test-localstack)",
    "sam build --use-container": "needs Docker (sam local); the template: tests/infra",
    "sam build                       # the consumer": "needs Docker and an AWS account",
}
# What curl may answer other than a success: (method, path pattern, status).
EXPECTED_FAILURES = {("POST", r"/api/v1/jobs/[^/]+/cancel$", 409)}


@dataclass(frozen=True)
class Block:
    lang: str
    text: str

    @property
    def first_line(self) -> str:
        return self.text.splitlines()[0]


def blocks() -> list[Block]:
    found = re.finditer(r"^```(\w*)\n(.*?)^```", README.read_text(), re.M | re.S)
    return [Block(m.group(1), m.group(2)) for m in found]


def _excluded(block: Block) -> str | None:
    return next((why for start, why in NOT_RUN.items() if block.first_line.startswith(start)), None)


def test_every_block_is_run_or_named_with_a_reason() -> None:
    unclassified = [b.first_line for b in blocks() if b.lang != "bash" and not _excluded(b)]
    assert not unclassified, f"README blocks neither run nor excluded: {unclassified}"
    stale = [s for s in NOT_RUN if not any(b.first_line.startswith(s) for b in blocks())]
    assert not stale, f"excluded blocks no longer in the README: {stale}"


def test_make_dev_options_are_make_devs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each `make dev ...` line of the README passes options make dev has."""
    lines = [
        line.split("#", 1)[0].strip()
        for block in blocks()
        for line in block.text.splitlines()
        if "make dev" in line.split("#", 1)[0]
    ]
    lines += re.findall(r"`(make dev ARGS=\"[^\"]+\")`", README.read_text())
    assert len(lines) >= 5
    for line in lines:
        words = shlex.split(line)
        env = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("ARGS="))
        args = next((w.split("=", 1)[1] for w in words if w.startswith("ARGS=")), "")
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        parsed = parse_args(shlex.split(args))  # argparse exits on an unknown option
        if "KEDRO_JOBS_PORT" in env:
            assert parsed.port == int(env["KEDRO_JOBS_PORT"])
            assert parsed.moto_port == int(env["MOTO_PORT"])
        for key in env:
            monkeypatch.delenv(key)


def _script(stack: LocalStack, status_log: Path) -> str:
    """The runnable blocks, pointed at the stack, with curl recording every answer."""
    api = stack.api
    parts = [
        "set -o pipefail",
        # Each answer: its status, method and URL, one line in status_log.
        "curl() { command curl -w '\\n%{http_code} %{method} %{url_effective}\\n' "
        f'"$@" 2>>{shlex.quote(str(status_log))}.err | _split; }}',
        f"_split() {{ {sys.executable} -c {shlex.quote(_SPLIT)} {shlex.quote(str(status_log))}; }}",
    ]
    for i, block in enumerate(b for b in blocks() if b.lang == "bash" and not _excluded(b)):
        text = (
            block.text.replace("http://localhost:8000", api)
            .replace("http://127.0.0.1:8000", api)
            .replace("http://127.0.0.1:5000", stack.endpoint_url)
            .replace("source .venv/", f"source {VENV}/")
            .replace(" JOB_ID", " $JOB_ID")
        )
        parts += [f"echo '::block {i}::'", text]
    return "\n".join(parts) + "\n"


# curl's output ends with the line -w adds (after a newline of its own): the body goes on to
# stdout as it came, the status line to the log.
_SPLIT = (
    "import sys; data = sys.stdin.buffer.read()[:-1]; cut = data.rfind(b'\\n'); "
    "sys.stdout.buffer.write(data[:cut]); open(sys.argv[1], 'ab').write(data[cut + 1 :] + b'\\n')"
)


def _run(script: str, cwd: Path, stack: LocalStack) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KEDRO_JOBS_API": stack.api,
        "PATH": f"{VENV / 'bin'}:{os.environ['PATH']}",
        "COLUMNS": "160",
    }
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        env.pop(key, None)  # the README must say what the aws CLI needs
    process = subprocess.Popen(
        ["bash", "-c", script],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=RUN_SECONDS)
    finally:
        # Bounded, and nothing it started outlives it.
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_the_readmes_commands_work_against_make_dev(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    if shutil.which("aws") is None or shutil.which("jq") is None:
        pytest.fail("the README's examples use the aws CLI and jq: install them")
    started = time.time()
    status_log = tmp_path / "statuses.txt"
    work = tmp_path / "work"
    work.mkdir()
    run = _run(_script(local_stack, status_log), work, local_stack)
    said = f"stdout:\n{run.stdout[-4000:]}\nstderr:\n{run.stderr[-4000:]}"
    runnable = [b for b in blocks() if b.lang == "bash" and not _excluded(b)]
    # Every runnable block was reached (a block that stops the script cuts the count short).
    assert run.stdout.count("::block ") == len(runnable) >= 4, said

    # Every HTTP answer a success, but those the README says fail.
    answers = [line.split(" ", 2) for line in status_log.read_text().splitlines() if line]
    assert len(answers) >= 20, answers
    for status, method, url in answers:
        path = url.split("?", 1)[0].removeprefix(local_stack.api)
        allowed = any(
            method == m and re.search(p, path) and int(status) == code
            for m, p, code in EXPECTED_FAILURES
        )
        assert int(status) < 400 or allowed, f"{method} {url} answered {status}\n{said}"

    # The old service's loop saw the job complete; the downloads are the files the jobs saved.
    assert '"status": "completed"' in run.stdout, said
    assert (work / "clean_orders.csv").read_text().startswith("order_id,region,"), said
    model = pickle.loads((work / "revenue_model.pkl").read_bytes())
    assert set(model) == {"slope", "intercept"}
    # The CLI block: the watched job completed; no usage error; only the documented 409.
    assert re.search(r"Job \S+ completed", run.stdout), said
    assert "kedro-jobs: " not in run.stderr, said
    cli_errors = re.findall(r"Error \(HTTP (\d+)\)", run.stderr)
    assert set(cli_errors) <= {"409"}, said
    assert "kedro-jobs " in run.stdout  # --version
    # The SQS block: its message became a job, shown like any other.
    with local_stack.client() as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            jobs = client.get("/api/v1/jobs", params={"limit": 50}).json()["jobs"]
            if any(j["source"] == "sqs" for j in jobs):
                break
            time.sleep(0.5)
        assert any(j["source"] == "sqs" for j in jobs), said
        # And every job the README's commands made ran as they mean it to: none failed.
        mine = [j for j in jobs if _epoch(j["created_at"]) >= started]
        for job in mine:
            wait_for(client, job["id"])
        ended = {j["id"]: client.get(f"/api/v1/jobs/{j['id']}").json() for j in mine}
        failed = {i: j["error_message"] for i, j in ended.items() if j["status"] == "failed"}
        assert not failed, f"{failed}\n{said}"


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
