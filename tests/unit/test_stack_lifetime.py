"""The local stack's periodic processes (the schedule firer, the sweeper) stop at once when
told, even in the middle of a pass."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

PERIODIC = """
import logging, pathlib, sys, time
from kedro_jobs_local.lifetime import run_every

def task():
    pathlib.Path(sys.argv[1]).touch()
    time.sleep(60)  # a call to an emulator that has gone, retrying with back-off

run_every(1.0, task, first_after=0.0, logger=logging.getLogger("test"))
print("stopped", flush=True)
"""


def test_a_stop_cuts_short_a_pass_under_way(tmp_path: Path) -> None:
    in_pass = tmp_path / "in-pass"
    process = subprocess.Popen(
        [sys.executable, "-c", PERIODIC, str(in_pass)], stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not in_pass.exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=20)  # not the pass's 60 s
    finally:
        process.kill()
    assert process.returncode == 0
    assert out == "stopped\n"


FAILING = """
import logging, os, signal
from botocore.exceptions import EndpointConnectionError
from kedro_jobs_local.lifetime import run_every

passes = []

def sweep():
    passes.append(1)
    if len(passes) == 1:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:5000/")
    if len(passes) == 2:
        raise ValueError("a bug in the pass")
    os.kill(os.getpid(), signal.SIGTERM)

logging.basicConfig(format="%(levelname)s %(message)s")
run_every(0.01, sweep, first_after=0.0, logger=logging.getLogger("test"))
"""


def test_a_pass_that_cannot_reach_the_emulator_logs_a_line_and_the_next_pass_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FAILING], capture_output=True, text=True, timeout=30, check=True
    )
    away, bug = done.stderr.split("ERROR ", 1)
    assert away == (
        "WARNING sweep failed (EndpointConnectionError: Could not connect to the endpoint URL: "
        '"http://127.0.0.1:5000/")\n'
    )
    assert bug.startswith("sweep failed\nTraceback") and "ValueError: a bug in the pass" in bug
