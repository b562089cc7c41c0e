"""`make dev` started on random free ports, driven over HTTP: what the e2e tests and the load
benchmark run against. Nothing it started may be left running when it stops.

With KEDRO_JOBS_E2E_LOCALSTACK set to an interpreter that has localstack-core (what `make
test-localstack` does), each stack's SQS and S3 are a LocalStack of its own and DynamoDB
stays on the embedded moto.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx

from kedro_jobs_local.localstack import LocalStackServer
from kedro_jobs_local.moto_server import free_port
from kedro_jobs_local.procfs import Proc, descendants, left_running

LOCALSTACK_PYTHON = os.environ.get("KEDRO_JOBS_E2E_LOCALSTACK", "")


@dataclass
class LocalStack:
    api: str
    endpoint_url: str  # the embedded moto
    log: Path
    process: subprocess.Popen[bytes] | None = None
    endpoints: dict[str, str] = field(default_factory=dict)  # per service, where not moto

    def client(self) -> httpx.Client:
        # A cancel or retry without a JSON body says it is no cross-site request.
        return httpx.Client(base_url=self.api, timeout=30, headers={"X-Kedro-Jobs-Client": "test"})

    def aws(self, service: str) -> Any:
        """A boto3 client of the service where this stack has it (moto or LocalStack)."""
        endpoint = self.endpoints.get(service, self.endpoint_url)
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")

    def processes(self) -> list[Proc]:
        """`make dev` and every process below it."""
        assert self.process is not None
        return descendants(self.process.pid)

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.api}/api/v1/health", timeout=10).json()
        return body


def _clean_env() -> dict[str, str]:
    drop = ("AWS_ENDPOINT_URL", "JOBS_", "ARTIFACTS_", "IDEMPOTENCY_", "KEDRO_PROJECT_PATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    return env


def wait_healthy(stack: LocalStack, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert stack.process is not None
        if stack.process.poll() is not None:
            raise RuntimeError(f"make dev exited early:\n{stack.log.read_text()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{stack.api}/api/v1/health", timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"make dev never got healthy:\n{stack.log.read_text()[-4000:]}")
        time.sleep(0.2)


def stop_and_count(
    process: subprocess.Popen[bytes], started: list[Proc], sig: int = signal.SIGTERM
) -> list[Proc]:
    """Signal `make dev`, wait for it, and return what it left running (then stop those,
    so one failure does not leak into the next test)."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    deadline = time.monotonic() + 5  # the kernel's death signals take a moment
    while left_running(started) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = left_running(started)
    for proc in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
    return left


@contextmanager
def running_local_stack(
    log: Path,
    *,
    workers: int = 2,
    env: dict[str, str] | None = None,
    state_dir: Path | None = None,
    args: tuple[str, ...] = (),
    port: int | None = None,
    moto_port: int | None = None,
    verbose: bool = True,
) -> Iterator[LocalStack]:
    """`make dev` on random free ports, until the block ends; then nothing it started may
    be left running. Its state goes to `state_dir` (default: beside the log). ``verbose``:
    every process's log in `log` (else, as `make dev` by default, one line per job state
    change there and the processes' logs in the state folder's dev.log)."""
    port, moto_port = port or free_port(), moto_port or free_port()
    state_dir = state_dir or log.parent / "state"
    with contextlib.ExitStack() as stack_of:
        endpoints: dict[str, str] = {}
        if LOCALSTACK_PYTHON:
            # Step Functions too (boto3's service id SFN), so the fan-out state machine's
            # waitForTaskToken sends reach the queue on the same LocalStack; STS, which its
            # SQS integration asks for the caller's account.
            localstack = LocalStackServer(
                LOCALSTACK_PYTHON,
                services="sqs,s3,stepfunctions,sts",
                log=stack_of.enter_context(log.with_suffix(".ls.log").open("wb")),
            ).start()
            stack_of.callback(localstack.stop)
            endpoints = {s: localstack.endpoint_url for s in ("sqs", "s3", "sfn")}
        process_env = {
            **_clean_env(),
            **{f"AWS_ENDPOINT_URL_{s.upper()}": url for s, url in endpoints.items()},
            **(env or {}),
        }
        with log.open("ab") as out:
            process = subprocess.Popen(  # noqa: S603 - this interpreter, our own module
                [
                    sys.executable, "-m", "kedro_jobs_local.dev",
                    "--port", str(port), "--moto-port", str(moto_port),
                    "--workers", str(workers), "--consumer-timeout", "60",
                    "--state-dir", str(state_dir), *(["--verbose"] if verbose else []), *args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=process_env,
            )  # fmt: skip
        stack = LocalStack(
            f"http://127.0.0.1:{port}", f"http://127.0.0.1:{moto_port}", log, process, endpoints
        )
        started: list[Proc] = []
        try:
            wait_healthy(stack)
            yield stack
        finally:
            started = stack.processes() if process.poll() is None else []
            left = stop_and_count(process, started)
        assert not left, f"make dev left {len(left)} process(es) running: {left}"
