"""A rerun from failure as the consumer sees it: the nodes its first segment does not run
again (the timeline shows them ``reused``), and what a stopped job keeps for one."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from kedro_jobs.core.models import Job, utcnow
from kedro_jobs.core.rerun import kept_fields
from kedro_jobs.core.timeline import MAX_TIMELINE_NODES, NodeRun
from kedro_jobs.runner.types import RunOutcome

logger = Logger(service="kedro-jobs-consumer", child=True)


def reused_timeline(job: Job) -> tuple[list[NodeRun], int]:
    """The first segment of a rerun from failure starts its timeline with the nodes it reuses
    (and how many of them are left out of a very long pipeline's record). Best effort: if
    the kept checkpoint cannot be read, the run fails saying so, and the timeline is empty."""
    if not job.reused_from or not job.checkpoint or job.segments or job.nodes:
        return list(job.nodes or []), job.nodes_omitted
    from kedro_jobs.runner.checkpoint import completed_nodes

    try:
        names = completed_nodes(job.checkpoint, job.reused_from)
    except Exception as exc:
        logger.warning("reused nodes not read", extra={"reason": repr(exc)})
        return [], 0
    shown = names[-MAX_TIMELINE_NODES:]
    return [NodeRun(name=name, status="reused") for name in shown], len(names) - len(shown)


def kept(job: Job, outcome: RunOutcome) -> dict[str, Any] | None:
    """The record's fields for what a stopped run kept for a rerun from failure."""
    return kept_fields(job, outcome.kept, utcnow())
