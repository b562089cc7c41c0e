"""Run a Kedro pipeline in-process with Kedro's Python API (no `kedro run` subprocess).

The project is bootstrapped once per container (settings, pipeline registry, one unrun
session to import the rest of Kedro). Each job gets a fresh KedroSession (~20 ms) with hooks
that report progress, stop the run at a node boundary, and point its file datasets at the
job's own data (data.py). Isolation "fork" (the default) runs each job in a child forked from
this warm process (forked.py); "inline" runs it here (isolation.py), for places that cannot
fork, and checks the deadline between nodes only. Either way the outcome is made here, in one
place: outputs committed on success, staging discarded always. A job longer than one
invocation stops at a node boundary with a checkpoint (status "continued") and goes on from
it in the next (checkpoint.py); its checkpoints are removed once it ends.

Measured by `make bench` (2 shared cores; `hello`, 2 nodes; warm; no-op progress sink):
    inline ~20-25 ms a job     fork ~36-42 ms a job: the fork adds ~17 ms (~6 ms the fork
    itself, ~10 ms the child's copy-on-write page faults while it builds its session; its
    exit is reaped off the job's path)
    cold start: import + bootstrap + warm-up session ~1.1-1.3 s (first job then as above)
Without project.speed_up_sessions (Kedro's per-session git calls, entry-point scan, failed
`import ibis`, the pipeline registry re-read by every forked child) a job took ~10-30 ms more.
"""

from __future__ import annotations

import gc
import logging
import os
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Any, Literal

from kedro_jobs.names import unknown_pipeline_message
from kedro_jobs.runner.checkpoint import (
    Checkpointer,
    CheckpointError,
    Manifest,
    Signer,
    delete,
    delete_all_but,
    job_checkpoints,
    read_manifest,
)
from kedro_jobs.runner.control import CHECKPOINT_ALLOWANCE_SECONDS, ContinuePolicy, RunControl
from kedro_jobs.runner.data import DataPlan
from kedro_jobs.runner.isolation import Ended, run_inline
from kedro_jobs.runner.log import log_line
from kedro_jobs.runner.project import bootstrap, ensure_configured, speed_up_sessions, warm_up
from kedro_jobs.runner.types import ProgressSink, RunOutcome, RunRequest

# Kedro is imported only below this module (lazily). Before it is: no telemetry (it calls the
# network), console-only logging (Lambda's disk is read-only but /tmp).
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("KEDRO_LOGGING_CONFIG", str(Path(__file__).with_name("kedro_logging.yml")))

logger = logging.getLogger(__name__)
# Kedro's own use of OmegaConf warns on every session; it says nothing about the user's job.
warnings.filterwarnings("ignore", message="register_new_resolver", category=UserWarning)

Isolation = Literal["fork", "inline"]


class KedroRunner:
    def __init__(
        self,
        project_path: Path,
        *,
        isolation: Isolation = "fork",
        data_root: str = "",
        staging_dir: str = "",
        checkpoint_key: str | bytes = b"",
    ) -> None:
        """``data_root``: where committed dataset files live (a folder or s3://bucket/prefix;
        empty: the project folder). ``staging_dir``: local folder for jobs' uncommitted
        files (empty: the system's temporary folder). ``checkpoint_key``: the deployment's
        key that signs checkpoints (empty: one of this runner only)."""
        self.project_path = Path(project_path).resolve()
        self.signer = Signer(checkpoint_key)
        self.isolation = isolation
        self.data_root = data_root
        # Per user: a shared /tmp may hold another user's staging folder.
        staging = Path(staging_dir or tempfile.gettempdir())
        self.staging_root = staging / f"kedro-jobs-staging-{os.getuid()}"
        started = time.perf_counter()
        # Bootstrapping allocates much and frees little: no collections meanwhile (each
        # would walk the growing heap); one at the end, then the heap is frozen (below).
        gc.disable()
        try:
            self.package_name = bootstrap(self.project_path)
            speed_up_sessions()
            from kedro.framework.project import pipelines

            # Load the registry now, so every forked child starts with it in memory.
            self._pipelines: dict[str, Any] = dict(pipelines.items())
            warm_up(self.project_path)
            # All this lives as long as the container: out of the collector's sight
            # (gc.freeze), a full collection walks only what jobs allocate since. Without
            # it one took ~150 ms here, every few inline jobs.
            gc.collect()
            gc.freeze()
        finally:
            gc.enable()
        logger.info(
            "Kedro project %s bootstrapped in %.0f ms: pipelines %s",
            self.package_name,
            (time.perf_counter() - started) * 1000,
            ", ".join(self.pipeline_names),
        )

    @property
    def pipeline_names(self) -> list[str]:
        return sorted(self._pipelines)

    def manifest(self) -> dict[str, Any]:
        from kedro_jobs.runner.manifest import build_manifest

        return build_manifest(self.package_name, self._pipelines, self._parameters())

    def _parameters(self) -> dict[str, Any]:
        """The project's parameters as its config loader reads them (best effort: a manifest
        without defaults still lists every pipeline)."""
        try:
            from kedro.framework.project import settings

            loader = settings.CONFIG_LOADER_CLASS(
                conf_source=str(self.project_path / settings.CONF_SOURCE),
                **settings.CONFIG_LOADER_ARGS,
            )
            return dict(loader["parameters"])
        except Exception:
            logger.warning("the project's parameter defaults could not be read", exc_info=True)
            return {}

    # -- a job fanned out over workers (fanout.py) ------------------------------------------

    def fan_out_plan(self, request: RunRequest) -> dict[str, Any] | None:
        from kedro_jobs.runner import fanout

        return fanout.plan(self, request)

    def run_group(
        self,
        request: RunRequest,
        plan: dict[str, Any],
        group_id: str,
        progress: ProgressSink,
        *,
        deadline: float,
    ) -> RunOutcome:
        from kedro_jobs.runner import fanout

        return fanout.run_group(self, request, plan, group_id, progress, deadline=deadline)

    def commit_groups(self, job_id: str, plan: dict[str, Any]) -> RunOutcome:
        from kedro_jobs.runner import fanout

        return fanout.commit(self, job_id, plan)

    def discard_groups(self, job_id: str, group_id: str | None = None) -> None:
        from kedro_jobs.runner import fanout

        fanout.discard(self, job_id, group_id)

    def run(self, request: RunRequest, progress: ProgressSink, *, deadline: float) -> RunOutcome:
        """Run one job, or its next segment from ``request.checkpoint``; past ``deadline`` (a
        time.monotonic() value) it is stopped, or, with ``request.may_continue``, it stops
        at a node boundary with too little time left for the next node (status "continued",
        ``checkpoint`` set)."""
        control = RunControl(progress, deadline)
        if request.pipeline_name not in self._pipelines:
            message = unknown_pipeline_message(request.pipeline_name, self.pipeline_names)
            return self._failed(message, request, control)
        root = self.data_root or str(self.project_path)
        resumed: Manifest | None = None
        if request.checkpoint:
            try:
                resumed = read_manifest(request.checkpoint, request.job_id, self.signer)
            except CheckpointError as error:
                return self._failed(str(error), request, control)
        control.policy = _policy(request, resumed)
        ensure_configured(self.package_name)
        plan = DataPlan.for_job(
            self.project_path,
            self.data_root,
            self.staging_root,
            request.job_id,
            resumed.save_version if resumed else None,
        )
        # A segment number the consumer did not advance must not overwrite the checkpoint
        # this run goes on from.
        segment = max(request.segment, resumed.segment + 1 if resumed else 1)
        checkpoints = Checkpointer(
            f"{job_checkpoints(root, request.job_id)}/{segment}",
            plan,
            self.signer,
            request.job_id,
            request.pipeline_name,
            segment,
            request.checkpoint,
            resumed,
        )
        from kedro_jobs.runner.session import execute

        work = partial(execute, self.project_path, request, plan=plan, checkpoints=checkpoints)
        try:
            if self.isolation == "inline":
                ended = run_inline(work, control)
            else:
                from kedro_jobs.runner.forked import run_forked

                ended = run_forked(work, control)
            outputs = self._commit(ended, plan, control)
        finally:
            plan.discard()
        self._clean_checkpoints(ended, request, control, root)
        return self._outcome(ended, control, outputs)

    def _failed(self, message: str, request: RunRequest, control: RunControl) -> RunOutcome:
        ended = Ended("failed", message, log=log_line("ERROR", "kedro_jobs", message) + "\n")
        self._clean_checkpoints(ended, request, control, self.data_root or str(self.project_path))
        return self._outcome(ended, control, [])

    @staticmethod
    def _clean_checkpoints(
        ended: Ended, request: RunRequest, control: RunControl, root: str
    ) -> None:
        """All of a job's checkpoints are spent once it ends. A segment that saved its own
        keeps the one it went on from: until the consumer has recorded the new one, the job's
        record still names the old, and a consumer that dies in between leaves the job to be
        taken over from it. Older ones (recorded as superseded by the one this segment read)
        go. A job that never saved or read one has none to remove."""
        if ended.status == "continued" and ended.checkpoint is None:  # cannot go on
            ended.status, ended.error = "failed", "The run stopped without a checkpoint"
        try:
            if ended.status == "continued":
                keep = {c for c in (request.checkpoint, ended.checkpoint) if c}
                delete_all_but(root, request.job_id, keep)
            elif ended.status == "timed_out" and (
                request.keep_checkpoint_on_timeout or control.handing_back
            ):
                delete_all_but(root, request.job_id, {request.checkpoint or ""} - {""})
            elif request.checkpoint or control.checkpoint_started is not None:
                delete(job_checkpoints(root, request.job_id))
        except Exception:  # the outcome stands; an orphan checkpoint only costs storage
            logger.exception("could not remove spent checkpoints of job %s", request.job_id)

    @staticmethod
    def _commit(ended: Ended, plan: DataPlan, control: RunControl) -> list[dict[str, Any]]:
        """A completed run's outputs are published; nothing of any other run is. A folder's
        commit waits for another job's of it no longer than the run's time left (1 s at
        least): better a clear failure than the invocation killed mid-commit."""
        if ended.status != "completed":
            return []
        try:
            return plan.commit(ended.staged, lock_wait=max(1.0, control.remaining()))
        except Exception as error:  # the data root refused: the job did not complete
            message = f"Outputs could not be committed to {plan.data_root}: {error!r}"
            logger.exception("commit failed")
            ended.status, ended.error, ended.results = "failed", message, None
            ended.log += log_line("ERROR", "kedro_jobs", message) + "\n"
            return []

    @staticmethod
    def _outcome(ended: Ended, control: RunControl, outputs: list[dict[str, Any]]) -> RunOutcome:
        return RunOutcome(
            status=ended.status,
            results=ended.results if ended.status == "completed" else None,
            error_message=ended.error,
            log=ended.log,
            duration=time.monotonic() - control.started,
            progress=control.final_progress(ended.status),
            outputs=outputs,
            checkpoint=ended.checkpoint if ended.status == "continued" else None,
            node_durations=dict(control.durations),
            checkpoint_seconds=ended.checkpoint_seconds,
            handed_back=control.handing_back and ended.status == "timed_out",
        )


def _policy(request: RunRequest, resumed: Manifest | None) -> ContinuePolicy:
    allowance = CHECKPOINT_ALLOWANCE_SECONDS
    if resumed is not None:  # the last checkpoint's save, measured, with room to spare
        allowance = max(allowance, 2 * resumed.save_seconds)
    return ContinuePolicy(
        allowed=request.may_continue,
        estimates=dict(request.node_estimates),
        margin=request.continue_margin_seconds,
        seen=dict(resumed.node_durations) if resumed else {},
        checkpoint_allowance=allowance,
    )
