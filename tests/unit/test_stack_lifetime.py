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
