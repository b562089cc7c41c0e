"""Run a Kedro pipeline in-process with Kedro's Python API (no `kedro run` subprocess).

The project is bootstrapped once per container (settings, pipeline registry, one unrun
session to import the rest of Kedro). Each job is one run of Kedro's KedroServiceSession
(session.py: one per env, made before the fork), with hooks that report progress, stop the
run at a node boundary, and point its file datasets at the job's own data (data.py).
Isolation "fork" (the default) runs each job in a child forked from
this warm process (forked.py); "inline" runs it here (isolation.py), for places that cannot
fork, and checks the deadline between nodes only. Either way the outcome is made here, in one
place: outputs committed on success, staging discarded always; the run's status is settled
by ending.py. A job longer than one
invocation stops at a node boundary with a checkpoint (status "continued") and goes on from
it in the next (checkpoint.py); its checkpoints are removed once it ends.

Measured by `make bench` (2 shared cores; `hello`, 2 nodes; warm; no-op progress sink):
    inline ~20-25 ms a job     fork ~36-42 ms a job: the fork adds ~17 ms (~6 ms the fork
    itself, ~10 ms the child's copy-on-write page faults while it builds its session; its
    exit is reaped off the job's path)
    cold start: import + bootstrap + warm-up session ~1.1-1.3 s (first job then as above)
A KedroSession a job (before the service session) redid Kedro's per-session git calls, its
entry-point scan and a re-read of the pipeline registry in every forked child, unless patched
(~10-30 ms a job); the service session does none of them. A failed `import ibis` on every
MemoryDataset save is still skipped (project.speed_up_sessions).
"""

from __future__ import annotations

import gc
import itertools
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Collection
from functools import partial
from pathlib import Path
from typing import Any, Literal

from kedro_jobs.names import unknown_pipeline_message
from kedro_jobs.runner.checkpoint import (
    Checkpointer,
    CheckpointError,
    Manifest,
    delete,
    delete_all_but,
    job_checkpoints,
    read_manifest,
)
from kedro_jobs.runner.control import CHECKPOINT_ALLOWANCE_SECONDS, ContinuePolicy, RunControl
from kedro_jobs.runner.data import DataPlan
from kedro_jobs.runner.ending import settle
from kedro_jobs.runner.isolation import Ended, run_inline
from kedro_jobs.runner.log import log_line
from kedro_jobs.runner.project import bootstrap, ensure_configured, speed_up_sessions, warm_up
from kedro_jobs.runner.rerun import checkpoint_owner, kept_checkpoint, rerun_error
from kedro_jobs.runner.signed import Signer
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
_RUNNERS = itertools.count(1)  # each runner's own number, in a forked-ahead child's token


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
        self._number = next(_RUNNERS)
        # Did the last run find what it prepares before forking already made? Only then is
        # the next job's child forked ahead: a workload of ever-new shapes (parameters) would
        # discard each such child, having forked twice a job.
        self._prepared_steady = True
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
        may_move: bool = False,
    ) -> RunOutcome:
        from kedro_jobs.runner import fanout

        return fanout.run_group(
            self, request, plan, group_id, progress, deadline=deadline, may_move=may_move
        )

    def commit_groups(self, job_id: str, plan: dict[str, Any]) -> RunOutcome:
        from kedro_jobs.runner import fanout

        return fanout.commit(self, job_id, plan)

    def discard_groups(
        self, job_id: str, group_id: str | None = None, *, keep: Collection[str] = ()
    ) -> None:
        from kedro_jobs.runner import fanout

        fanout.discard(self, job_id, group_id, keep=keep)

    def handovers(self, job_id: str) -> str:
        """Where the job's groups hand over (and a stopped one keeps what its groups made)."""
        from kedro_jobs.runner import handover

        return handover.job_handovers(self.data_root or str(self.project_path), job_id)

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
        owner = checkpoint_owner(request, root)
        if request.checkpoint:
            try:
                resumed = read_manifest(request.checkpoint, owner, self.signer)
            except CheckpointError as error:
                return self._failed(rerun_error(request, owner, str(error)), request, control)
        own = resumed is not None and owner == request.job_id
        control.policy = _policy(request, resumed)
        ensure_configured(self.package_name)
        from kedro_jobs.runner.session import execute, prepare, prepared

        before = prepared()
        try:  # made here, before the fork: every later job's child has it
            prepare(self.project_path, request)
        except Exception:  # the run meets it again, and fails the job saying why
            logger.debug("no service session for env %r", request.options.env, exc_info=True)
        self._prepared_steady = prepared() == before
        plan = DataPlan.for_job(
            self.project_path,
            self.data_root,
            self.staging_root,
            request.job_id,
            # Another job's (a rerun from failure): this job saves a version of its own.
            resumed.save_version if resumed and own else None,
        )
        # A segment number the consumer did not advance must not overwrite the checkpoint
        # this run goes on from.
        segment = max(request.segment, resumed.segment + 1 if resumed and own else 1)
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
        work = partial(execute, self.project_path, request, plan=plan, checkpoints=checkpoints)
        try:
            if self.isolation == "inline":
                ended = run_inline(work, control)
            else:
                from kedro_jobs.runner.forked import run_forked

                ended = run_forked(work, control, self._fork_token())
            outputs, commit_error = self._commit(ended, plan, control)
        finally:
            plan.discard()
        return self._end(ended, request, control, root, outputs, commit_error, checkpoints.location)

    def fork_ahead(self) -> None:
        """Between jobs: fork the next job's child now, so that no job waits for its fork
        (forked.py). Fork isolation only, and only while jobs find what they need prepared."""
        if self.isolation != "fork" or not self._prepared_steady:
            return
        from kedro_jobs.runner.forked import fork_ahead

        fork_ahead(self._fork_token())

    def _fork_token(self) -> tuple[object, ...]:
        """All that a child forked now might hold differently from one forked later: this
        runner, the project Kedro is configured for, what runs prepared before forking, the
        environment (but for what Lambda sets anew each invocation) and the import path."""
        from kedro.framework import project

        from kedro_jobs.runner.forked import INVOCATION_ENV
        from kedro_jobs.runner.session import prepared

        return (
            os.getpid(),
            self._number,
            project.PACKAGE_NAME,
            prepared(),
            tuple(sorted(kv for kv in os.environ.items() if kv[0] not in INVOCATION_ENV)),
            tuple(sys.path),
        )

    def _failed(self, message: str, request: RunRequest, control: RunControl) -> RunOutcome:
        ended = Ended("failed", message, log=log_line("ERROR", "kedro_jobs", message) + "\n")
        # Nothing ran; a checkpoint it could not read is not kept either.
        root = self.data_root or str(self.project_path)
        return self._end(ended, request, control, root, keep=False)

    def _end(
        self,
        ended: Ended,
        request: RunRequest,
        control: RunControl,
        root: str,
        outputs: list[dict[str, Any]] | None = None,
        commit_error: str | None = None,
        location: str = "",
        *,
        keep: bool = True,
    ) -> RunOutcome:
        settled = settle(
            ended.status,
            ended.error,
            checkpoint=ended.checkpoint,
            commit_error=commit_error,
            handing_back=control.handing_back,
        )
        ended.status, ended.error = settled.status, settled.error
        kept = self._clean_checkpoints(ended, request, control, root, location, keep=keep)
        return self._outcome(ended, control, outputs or [], settled.handed_back, kept)

    @staticmethod
    def _clean_checkpoints(
        ended: Ended,
        request: RunRequest,
        control: RunControl,
        root: str,
        location: str = "",
        *,
        keep: bool = True,
    ) -> str | None:
        """All of a job's checkpoints are spent once it completes. A segment that saved its
        own keeps the one it went on from: until the consumer has recorded the new one, the
        job's record still names the old, and a consumer that dies in between leaves the job
        to be taken over from it. Older ones (recorded as superseded by the one this segment
        read) go. A job that never saved or read one has none to remove. A job that failed,
        was cancelled or timed out keeps one, for a rerun from failure: the one it saved as
        it stopped (at ``location``), else the one of its own it went on from. Returns it."""
        kept: str | None = None
        try:
            if ended.status == "continued":
                going_on = {c for c in (request.checkpoint, ended.checkpoint) if c}
                delete_all_but(root, request.job_id, going_on)
            elif ended.status == "timed_out" and (
                request.keep_checkpoint_on_timeout or control.handing_back
            ):
                delete_all_but(root, request.job_id, {request.checkpoint or ""} - {""})
                kept = kept_checkpoint(request, control, root, "")  # if the job ends here after all
            elif ended.status != "completed" and keep:
                kept = kept_checkpoint(request, control, root, location)
                if kept:
                    delete_all_but(root, request.job_id, {kept})
                elif request.checkpoint or control.checkpoint_started is not None:
                    delete(job_checkpoints(root, request.job_id))
            elif request.checkpoint or control.checkpoint_started is not None:
                delete(job_checkpoints(root, request.job_id))
        except Exception:  # the outcome stands; an orphan checkpoint only costs storage
            logger.exception("could not remove spent checkpoints of job %s", request.job_id)
        return kept

    @staticmethod
    def _commit(
        ended: Ended, plan: DataPlan, control: RunControl
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A completed run's outputs are published; nothing of any other run is. A folder's
        commit waits for another job's of it no longer than the run's time left (1 s at
        least): better a clear failure than the invocation killed mid-commit. Returns what
        was committed, or why nothing could be (the data root refused: see ending.settle)."""
        if ended.status != "completed":
            return [], None
        try:
            return plan.commit(ended.staged, lock_wait=max(1.0, control.remaining())), None
        except Exception as error:
            message = f"Outputs could not be committed to {plan.data_root}: {error!r}"
            logger.exception("commit failed")
            ended.log += log_line("ERROR", "kedro_jobs", message) + "\n"
            return [], message

    @staticmethod
    def _outcome(
        ended: Ended,
        control: RunControl,
        outputs: list[dict[str, Any]],
        handed_back: bool,
        kept: str | None = None,
    ) -> RunOutcome:
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
            handed_back=handed_back,
            kept=kept,
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
