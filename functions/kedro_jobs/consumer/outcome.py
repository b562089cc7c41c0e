"""A run's outcome into the job record: status, the log, results and outputs (in S3 when too
large for the item), a finished job's segments; or, for a segment that stopped to continue,
the hand-off to the next one."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from kedro_jobs.core.artifacts import ArtifactStore, log_key, outputs_key, results_key
from kedro_jobs.core.errors import DependencyUnavailable
from kedro_jobs.core.models import Job, Progress, Segment
from kedro_jobs.core.requests import Compute, json_size
from kedro_jobs.core.settings import Settings
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store.roles.run import RunJobs
from kedro_jobs.runner.ending import Verdict, verdict
from kedro_jobs.runner.types import RunOutcome, RunProgress

logger = Logger(service="kedro-jobs-consumer", child=True)


def to_progress(progress: RunProgress) -> Progress:
    return Progress(
        total_nodes=progress.total,
        completed_nodes=progress.completed,
        current_node=progress.current,
    )


class Recorder:
    def __init__(
        self,
        settings: Settings,
        store: RunJobs,
        artifacts: ArtifactStore,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.artifacts = artifacts
        self.metrics = metrics

    def write_log(self, job: Job, text: str) -> str:
        """The job's log: a later segment's lines follow the earlier segments' (one object,
        read whole by the API)."""
        if job.segments:
            try:
                text = (self.artifacts.get_text(log_key(job.id)) or "") + text
            except DependencyUnavailable as exc:
                logger.warning("earlier segments' log not read", extra={"reason": exc.reason})
        return self.artifacts.put_text(log_key(job.id), text)

    def hand_off(
        self,
        job: Job,
        outcome: RunOutcome,
        segments: list[Segment],
        *,
        checkpoint: str | None,
        compute: Compute | None = None,
        timeline: dict[str, Any] | None = None,
    ) -> Job | None:
        """The segment stopped: the job stays running, handed off to the next segment, which
        goes on from ``checkpoint`` (on ``compute``, if it changes)."""
        self.write_log(job, outcome.log)
        handed = self.store.hand_off(
            job,
            checkpoint=checkpoint,
            segments=segments,
            progress=to_progress(outcome.progress),
            lease_seconds=float(self.settings.job_lease_seconds),
            compute=compute,
            timeline=timeline,
        )
        if handed is None:
            logger.warning("job changed hands before its hand-off was written; dropped")
        else:
            self.count("JobsContinued")
        return handed

    def finish(
        self,
        job: Job,
        outcome: RunOutcome,
        segments: list[Segment] | None = None,
        *,
        execution_time: float | None = None,
        timeline: dict[str, Any] | None = None,
        kept: dict[str, Any] | None = None,
        ending: Verdict | None = None,
    ) -> Job | None:
        """The job ends as ``ending`` says (by default, as ending.verdict says of the
        outcome alone). ``kept``: the checkpoint kept for a rerun from failure
        (consumer/rerun.py)."""
        ending = ending or verdict(outcome)
        if ending.status is None:
            raise ValueError(f"a run that goes on ({ending.next}) does not finish its job")
        status, error = JobStatus(ending.status), ending.error
        log_location = self.write_log(job, outcome.log or f"{error or '(empty log)'}\n")
        inline_max = self.settings.results_inline_max_bytes
        results, results_location = outcome.results, None
        if results is not None and json_size(results) > inline_max:
            results_location = self.artifacts.put_json(results_key(job.id), results)
            results = None
        outputs, outputs_location = outcome.outputs or None, None
        if outputs is not None and json_size(outputs) > inline_max:
            outputs_location = self.artifacts.put_json(outputs_key(job.id), outputs)
            outputs = None
        duration = outcome.duration if execution_time is None else execution_time
        finished = self.store.finish(
            job,
            status,
            results=results,
            results_location=results_location,
            outputs=outputs,
            outputs_location=outputs_location,
            error_message=error,
            execution_time=round(duration, 6),
            progress=to_progress(outcome.progress),
            log_location=log_location,
            segments=segments,
            timeline=timeline,
            kept=kept,
        )
        if finished is None:
            logger.warning("job changed hands before its outcome was written; outcome dropped")
            return None
        logger.info(
            "job finished",
            extra={"status": status.value, "execution_time": duration, "error": error},
        )
        self.count("JobsCompleted" if status is JobStatus.COMPLETED else f"Jobs{status.title()}")
        if self.metrics is not None:
            self.metrics.add_metric("JobDuration", MetricUnit.Seconds, duration)
        return finished

    def count(self, name: str) -> None:
        if self.metrics is not None:
            self.metrics.add_metric(name, MetricUnit.Count, 1)
