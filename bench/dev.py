"""What the benchmarks share to start: their process's environment, and `make dev` on free
ports, quiet, against which they submit jobs over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench_environment(project: Path = ROOT / "local" / "example_project") -> None:
    """This process's environment for a benchmark that runs the functions in it: dummy AWS
    credentials (everything talks to moto), no tracing, no Kedro telemetry, ``project``."""
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "KEDRO_DISABLE_TELEMETRY": "1",
            "DO_NOT_TRACK": "1",
            "KEDRO_PROJECT_PATH": str(project),
        }
    )


def dev_environment(**extra: str) -> dict[str, str]:
    """This process's environment less what points at another stack (its endpoints, its
    JOBS_* resources), plus ``extra``: `make dev` makes and names its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "JOBS_"))}
    return {**env, **extra}


def start_dev(
    *,
    workers: int = 1,
    consumer_timeout: float | None = 60,
    state_dir: str = "",
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """`make dev` on free ports, its output discarded; returns the process (the caller stops
    it) and its API's base URL. ``state_dir`` "" keeps the state in memory (never a user's
    .kedro-jobs/)."""
    from kedro_jobs_local.moto_server import free_port

    port, moto_port = free_port(), free_port()
    command = [sys.executable, "-m", "kedro_jobs_local.dev", "--port", str(port),
               "--moto-port", str(moto_port), "--workers", str(workers),
               "--state-dir", state_dir]  # fmt: skip
    if consumer_timeout is not None:
        command += ["--consumer-timeout", f"{consumer_timeout:g}"]
    dev = subprocess.Popen(
        command,
        env=dev_environment() if env is None else env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return dev, f"http://127.0.0.1:{port}/api/v1"
