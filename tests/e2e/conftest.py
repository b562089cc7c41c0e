"""The local stack (`make dev`) started on random free ports, driven over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kedro_jobs_local.moto_server import free_port


@dataclass
class LocalStack:
    api: str
    endpoint_url: str
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api, timeout=30)


def _clean_env() -> dict[str, str]:
    drop = ("AWS_ENDPOINT_URL", "JOBS_", "ARTIFACTS_", "IDEMPOTENCY_", "KEDRO_PROJECT_PATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    return env


@contextmanager
def running_local_stack(
    log: Path, *, workers: int = 2, env: dict[str, str] | None = None
) -> Iterator[LocalStack]:
    """`make dev` on random free ports, until the block ends."""
    port, moto_port = free_port(), free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "kedro_jobs_local.dev",
                "--port", str(port), "--moto-port", str(moto_port),
                "--workers", str(workers), "--consumer-timeout", "60",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**_clean_env(), **(env or {})},
        )  # fmt: skip
    stack = LocalStack(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{moto_port}", log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"make dev exited early:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{stack.api}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"make dev never got healthy:\n{log.read_text()[-4000:]}")
            time.sleep(0.2)
        yield stack
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_local_stack(tmp_path_factory.mktemp("dev") / "dev.log") as stack:
        yield stack
