"""One job as one task: ``python -m kedro_jobs.consumer.task <job-id>``; or one group of a
fanned-out job: ``... <job-id> --group <group-id> --claim <claim>`` (docs/fan-out.md).

What an ECS Fargate task runs (the task definition's entry point, the job id as its command),
and what ``make dev`` starts as a local process for a ``compute: fargate`` job. The consumer
is the handler's own (same settings, store, runner, metrics), so claim, fencing, heartbeat,
progress, logs, cancel and outcome are the Lambda's code; only the budget differs.

SIGTERM (ECS StopTask, then SIGKILL 30 s later; make dev stopping) unwinds the run: a forked
job's child is killed and reaped on the way out, nothing is recorded, and the job's lease
expires, after which the sweeper sends it again (as after a Lambda crash).

Exit status: 0 the job completed; 1 it failed; 3 it was cancelled; 4 this task did not run
it (not found, finished, running elsewhere, out of attempts); 5 it was taken over while it
ran; 6 an error left the outcome unrecorded (the lease expires, as on SIGTERM); 143 stopped by
SIGTERM; 2 a bad command line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import urllib.request
from types import FrameType

from kedro_jobs.core.compute import CLAIM_FLAG, GROUP_FLAG

EXIT_CODES = {"completed": 0, "failed": 1, "cancelled": 3, "lost": 5}
NOT_RUN = 4
ERROR = 6
STOPPED = 128 + signal.SIGTERM
TASK_ID_ENV = "KEDRO_JOBS_TASK_ID"
METADATA_ENV = "ECS_CONTAINER_METADATA_URI_V4"


class Stopped(BaseException):
    """SIGTERM: a BaseException, so no ``except Exception`` on the way records it as the
    job's failure; the finally blocks (the forked child's reaping) still run."""


def task_id(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """This task's id: its ECS task ARN (from the task metadata endpoint), else the id its
    launcher gave, else one made of the pid."""
    metadata = environ.get(METADATA_ENV)
    if metadata:
        try:
            # The agent's link-local endpoint, set by ECS itself; never user input.
            with urllib.request.urlopen(f"{metadata}/task", timeout=2) as resp:  # noqa: S310  # nosec B310
                arn = json.load(resp).get("TaskARN")
            if arn:
                return str(arn)
        except (OSError, ValueError):
            pass  # the job still runs; its segment then names the fallback
    return environ.get(TASK_ID_ENV) or f"local:{os.getpid()}"


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise Stopped(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__spec__.name if __spec__ else 'kedro_jobs.consumer.task'}",
        description="Run one job of the jobs table to its end, as a Fargate task does.",
    )
    parser.add_argument("job_id")
    # A fanned-out job's group (docs/fan-out.md): the group, and the claim the dispatching
    # consumer made for this task (core/compute/base.py's task_command).
    parser.add_argument(GROUP_FLAG, dest="group", default=None)
    parser.add_argument(CLAIM_FLAG, dest="claim", default="")
    args = parser.parse_args(argv)

    # The handler's module makes the logger (JSON, like the Lambda's) and the metrics.
    from kedro_jobs.consumer.handler import consumer, flush_events, logger, metrics

    ident = task_id()
    logger.append_keys(task_id=ident)
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        if args.group is not None:
            outcome = consumer().run_group_task(
                args.job_id, args.group, claim=args.claim, task_id=ident
            )
        else:
            outcome = consumer().run_task(args.job_id, task_id=ident)
    except Stopped:
        logger.warning("task stopped by SIGTERM; the job's lease will expire and it is sent again")
        return STOPPED
    except Exception:
        logger.exception("task ended in an error; the job's lease will expire and it is sent again")
        return ERROR
    finally:
        signal.signal(signal.SIGTERM, previous)
        flush_events()  # the job's events, sent in the background
        metrics.flush_metrics()
    code = EXIT_CODES.get(outcome, NOT_RUN)
    logger.info("task ended", extra={"outcome": outcome, "exit_code": code})
    return code


if __name__ == "__main__":
    sys.exit(main())
