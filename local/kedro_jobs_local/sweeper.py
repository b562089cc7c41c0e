"""What the template's schedule does for the sweeper, locally: invoke its Lambda handler at
the template's rate (``SweeperFunction``'s ScheduleExpression, every minute), until told to
stop or the process that started it is gone."""

from __future__ import annotations

import argparse
import logging
import os
import re
from typing import Any

from kedro_jobs_local.lambda_context import LocalContext
from kedro_jobs_local.lifetime import run_every, stack_process, started

logger = logging.getLogger("kedro_jobs_local.sweeper")
FUNCTION = "SweeperFunction"
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT = {"minute": 60, "hour": 3600, "day": 86400}


def schedule_seconds(template: dict[str, Any]) -> float:
    """The sweeper's schedule as seconds between runs (a rate() expression)."""
    function = template["Resources"][FUNCTION]["Properties"]
    for event in function.get("Events", {}).values():
        expression = event.get("Properties", {}).get("ScheduleExpression", "")
        match = _RATE.match(str(expression))
        if match:
            return float(int(match.group(1)) * _UNIT[match.group(2).rstrip("s")])
    raise ValueError(f"{FUNCTION} has no rate() schedule in the template")


def run_sweeper(every: float, timeout: float = 60.0) -> None:
    """Sweep every ``every`` seconds, the first time one period after start (as a schedule
    would), until SIGTERM, SIGINT or SIGHUP."""
    from kedro_jobs.sweeper.handler import handler

    started()

    def sweep() -> None:
        result = handler({"source": "local.schedule"}, LocalContext(timeout, FUNCTION))
        if any(result.values()):
            logger.info("sweep: %s", result)

    run_every(every, sweep, first_after=every, logger=logger)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The sweeper on the template's schedule")
    parser.add_argument("--every", type=float, help="seconds between sweeps (the template's)")
    args = stack_process(parser, argv)
    every = args.every
    if every is None:
        from kedro_jobs_local.template import load_template

        every = schedule_seconds(load_template())
    logger.info("sweeping every %.0f s (pid %d)", every, os.getpid())
    run_sweeper(every)


if __name__ == "__main__":
    main()
