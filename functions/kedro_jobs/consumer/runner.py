"""Run a Kedro pipeline in-process with Kedro's Python API (no `kedro run` subprocess).

The project is bootstrapped once per container. With isolation "fork" (the default), each
job runs in a child process forked from that warm parent: a timeout or a crash kills only
the child, no code of a stopped job runs into the next invocation, and jobs share no state.
The child reports over a pipe (Lambda has no /dev/shm, so no multiprocessing queues): log
lines, the node count, each finished node, and the outcome. The child never waits on the
parent's DynamoDB writes: the parent records progress, looks for a cancel request while a node
runs long, and answers "stop", which the child obeys at its next node boundary. Isolation
"inline" runs in the calling process, for places that cannot fork; there the deadline is
checked between nodes only.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
import os
import select
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from kedro_jobs.consumer.results import to_json_safe

# Before Kedro is imported: no telemetry (it calls the network), console-only logging.
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("KEDRO_LOGGING_CONFIG", str(Path(__file__).with_name("kedro_logging.yml")))

logger = logging.getLogger(__name__)
# Kedro's own use of OmegaConf warns on every session; it says nothing about the user's job.
warnings.filterwarnings("ignore", message="register_new_resolver", category=UserWarning)

Status = Literal["completed", "failed", "cancelled", "timed_out"]
ProgressSink = Callable[[int, int, str | None], bool]
"""Called with (completed_nodes, total_nodes, current_node) at the start and after each
node; returns True when the job should stop (a cancel was requested)."""

BAKED_PROJECT = Path(os.environ.get("LAMBDA_TASK_ROOT", "/var/task")) / "project"
EXAMPLE_PROJECT = Path(__file__).resolve().parents[3] / "local" / "example_project"
CANCEL_POLL_SECONDS = 2.0
_FILTERS = ("tags", "node_names", "from_nodes", "to_nodes", "from_inputs", "to_outputs")


@dataclass(frozen=True)
class RunRequest:
    job_id: str
    pipeline_name: str
    parameters: dict[str, Any]
    options: dict[str, Any]


@dataclass(frozen=True)
class RunOutcome:
    status: Status
    results: dict[str, Any] | None
    error_message: str | None
    failed_node: str | None
    log: str
    duration: float


class _Stop(Exception):
    """Raised at a node boundary to stop the run (cancel, or the inline deadline)."""

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status: Status = status


def project_path_from_env() -> Path:
    """KEDRO_PROJECT_PATH, else the project baked into the image, else the bundled example."""
    configured = os.environ.get("KEDRO_PROJECT_PATH")
    if configured:
        return Path(configured).resolve()
    return BAKED_PROJECT if BAKED_PROJECT.is_dir() else EXAMPLE_PROJECT


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


class _LogCollector(logging.Handler):
    """Sends each log record of the run to ``emit_line`` (the pipe, or a list)."""

    def __init__(self, emit_line: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.emit_line = emit_line

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            line = f"{_timestamp()} {record.levelname} {record.name}: {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                line += f" [{type(exc).__name__}: {exc}]"
            self.emit_line(line)


@contextlib.contextmanager
def _collect_logs(emit_line: Callable[[str], None]) -> Iterator[None]:
    handler = _LogCollector(emit_line)
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def _error_message(error: BaseException, node: str | None) -> str:
    text = f"{type(error).__name__}: {error}"
    return f"{text} (node: {node})" if node else text


class KedroRunner:
    def __init__(
        self, project_path: Path, *, isolation: Literal["fork", "inline"] = "fork"
    ) -> None:
        self.project_path = Path(project_path).resolve()
        self.isolation = isolation
        self._bootstrap()

    # -- bootstrap, once per container -------------------------------------------------------

    def _bootstrap(self) -> None:
        from kedro.framework.project import configure_project, pipelines
        from kedro.framework.startup import bootstrap_project

        if (self.project_path / "pyproject.toml").is_file():
            metadata = bootstrap_project(self.project_path)
            self.package_name = metadata.package_name
        else:
            # An image may carry the project without its pyproject.toml.
            self.package_name = os.environ["KEDRO_PACKAGE_NAME"]
            sys.path.insert(0, str(self.project_path / "src"))
            configure_project(self.package_name)
        # Load the registry now, so every forked child starts with it in memory.
        self._pipelines: dict[str, Any] = dict(pipelines.items())
        self._warm_up()

    def _warm_up(self) -> None:
        """Build one session's context and catalog, unrun: the first one imports and sets up
        ~0.5 s of Kedro machinery that every forked child would otherwise redo."""
        from kedro.framework.session import KedroSession
        from kedro.runner import SequentialRunner  # noqa: F401 - imported for the children

        try:
            with KedroSession.create(project_path=self.project_path) as created:
                session: Any = created
                _ = session.load_context().catalog
        except Exception:  # a project whose base config needs runtime params: warm less
            logger.debug("warm-up session failed", exc_info=True)

    @property
    def pipeline_names(self) -> list[str]:
        return sorted(self._pipelines)

    def manifest(self) -> dict[str, Any]:
        from kedro import __version__ as kedro_version

        described: dict[str, Any] = {}
        for name, pipeline in sorted(self._pipelines.items()):
            inputs = sorted(pipeline.inputs())
            described[name] = {
                "nodes": [
                    {
                        "name": node.name,
                        "inputs": list(node.inputs),
                        "outputs": list(node.outputs),
                        "tags": sorted(node.tags),
                        "namespace": node.namespace,
                    }
                    for node in pipeline.nodes
                ],
                "inputs": [i for i in inputs if not i.startswith("params:") and i != "parameters"],
                "outputs": sorted(pipeline.outputs()),
                "parameters": [
                    i.removeprefix("params:") for i in inputs if i.startswith("params:")
                ],
            }
        return {
            "project": self.package_name,
            "kedro_version": kedro_version,
            "generated_at": _timestamp(),
            "pipelines": described,
        }

    # -- one job ---------------------------------------------------------------------------

    def run(
        self,
        request: RunRequest,
        progress: ProgressSink,
        *,
        deadline: float,
        cancel_requested: Callable[[], bool] | None = None,
    ) -> RunOutcome:
        """``cancel_requested`` (fork only) is asked while a node runs for more than
        ``CANCEL_POLL_SECONDS``, so a cancel lands at the end of that node."""
        if request.pipeline_name not in self._pipelines:
            known = ", ".join(self.pipeline_names)
            message = f"Unknown pipeline {request.pipeline_name!r}. Known pipelines: {known}"
            return RunOutcome("failed", None, message, None, message + "\n", 0.0)
        if self.isolation == "inline":
            return self._run_inline(request, progress, deadline)
        return self._run_forked(request, progress, deadline, cancel_requested)

    def _execute(
        self, request: RunRequest, on_start: Callable[[int, str | None], None],
        on_node: Callable[[str, int, int, str | None], None],
    ) -> dict[str, Any]:  # fmt: skip
        """Run the pipeline; returns the JSON-safe free outputs. Raises the pipeline's error
        (with the failing node noted by the hook) or _Stop."""
        from kedro.framework.session import KedroSession
        from kedro.runner import SequentialRunner

        options = request.options
        hook = _progress_hook_class()(on_start, on_node)
        with KedroSession.create(
            project_path=self.project_path,
            env=options.get("env"),
            runtime_params=request.parameters or None,
        ) as created:
            session: Any = created  # KedroSession; typed as its abstract base
            session._hook_manager.register(hook)  # the session's own hooks, plus ours
            filters = {k: options[k] for k in _FILTERS if options.get(k)}
            outputs = session.run(
                pipeline_names=[request.pipeline_name],
                runner=SequentialRunner(),
                namespaces=options.get("namespaces") or None,
                load_versions=options.get("load_versions") or None,
                **filters,
            )
        results = {}
        for name, dataset in outputs.items():
            value = dataset.load() if hasattr(dataset, "load") else dataset
            results[name] = to_json_safe(value)
        return results

    def _run_inline(
        self, request: RunRequest, progress: ProgressSink, deadline: float
    ) -> RunOutcome:
        started = time.monotonic()
        lines: list[str] = []
        failed_node: list[str] = []

        def check(completed: int, total: int, current: str | None) -> None:
            stop = progress(completed, total, current)
            if completed >= total:  # finished: a late cancel or deadline changes nothing
                return
            if stop:
                raise _Stop("cancelled", "Cancelled by the user while running")
            if time.monotonic() > deadline:
                raise _Stop("timed_out", _timeout_message(started, deadline))

        def on_node(name: str, completed: int, total: int, current: str | None) -> None:
            if name.startswith("!"):
                failed_node.append(name[1:])
                return
            check(completed, total, current)

        try:
            with _collect_logs(lines.append):
                results = self._execute(
                    request, lambda total, first: check(0, total, first), on_node
                )
        except _Stop as stop:
            return RunOutcome(stop.status, None, str(stop), None, _joined(lines), _since(started))
        except Exception as error:  # the pipeline's own error: it fails the job
            node = failed_node[-1] if failed_node else None
            message = _error_message(error, node)
            return RunOutcome("failed", None, message, node, _joined(lines), _since(started))
        return RunOutcome("completed", results, None, None, _joined(lines), _since(started))

    def _run_forked(
        self,
        request: RunRequest,
        progress: ProgressSink,
        deadline: float,
        cancel_requested: Callable[[], bool] | None,
    ) -> RunOutcome:
        started = time.monotonic()
        events_r, events_w = os.pipe()
        replies_r, replies_w = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or the child would print the parent's buffered output again
        # Keep the warm heap out of the collector: the child's GC then does not touch (and
        # copy) the parent's pages.
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; its effects are what the tests check
            _die_with_parent()
            os.close(events_r)
            os.close(replies_w)
            code = 0
            try:
                _Child(self, events_w, replies_r).main(request)
            except BaseException:
                code = 70
            finally:
                os._exit(code)
        os.close(events_w)
        os.close(replies_r)
        parent = _Parent(pid, events_r, replies_w, progress, deadline, started, cancel_requested)
        try:
            return parent.supervise()
        finally:
            parent.close()


def _die_with_parent() -> None:
    """If the consumer dies (killed, out of memory), its job's code must not go on alone:
    ask Linux to SIGKILL this child then (prctl PR_SET_PDEATHSIG)."""
    parent = os.getppid()
    with contextlib.suppress(Exception):  # not Linux: the parent's own kill still applies
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _since(started: float) -> float:
    return time.monotonic() - started


def _joined(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _timeout_message(started: float, deadline: float) -> str:
    budget = max(0.0, deadline - started)
    return (
        f"Job exceeded its time budget of {budget:.1f} s (the function's timeout less a "
        "safety margin) and was stopped"
    )


@functools.cache
def _progress_hook_class() -> type:
    """Kedro hooks reporting the node count, each finished node and the failing node
    (defined on first use: Kedro is imported only once a runner is made)."""
    from kedro.framework.hooks import hook_impl

    class ProgressHook:
        def __init__(
            self,
            on_start: Callable[[int, str | None], None],
            on_node: Callable[[str, int, int, str | None], None],
        ) -> None:
            self.on_start = on_start
            self.on_node = on_node
            self.order: list[str] = []
            self.completed = 0

        @hook_impl
        def before_pipeline_run(self, pipeline: Any) -> None:
            self.order = [node.name for node in pipeline.nodes]
            self.on_start(len(self.order), self.order[0] if self.order else None)

        @hook_impl
        def after_node_run(self, node: Any) -> None:
            self.completed += 1
            upcoming = self.order[self.completed] if self.completed < len(self.order) else None
            self.on_node(node.name, self.completed, len(self.order), upcoming)

        @hook_impl
        def on_node_error(self, node: Any) -> None:
            self.on_node("!" + node.name, self.completed, len(self.order), node.name)

    return ProgressHook


class _Child:
    """The forked child: runs the job, streams events as JSON lines, obeys the replies."""

    def __init__(self, runner: KedroRunner, events: int, replies: int) -> None:
        self.runner = runner
        self.events = os.fdopen(events, "w", buffering=1)
        self.replies = os.fdopen(replies, "r", buffering=1)
        self.failed_node: str | None = None

    def send(self, **event: Any) -> None:
        self.events.write(json.dumps(event) + "\n")

    def ask(self, completed: int, total: int, current: str | None) -> None:
        """Report a node boundary, and stop here if the parent has said so. The child does
        not wait for the parent's DynamoDB write: a cancel seen during that write lands at
        the next boundary."""
        self.send(t="progress", completed=completed, total=total, current=current)
        ready, _, _ = select.select([self.replies], [], [], 0)
        # A cancel that arrives after the last node is too late: the job has finished.
        if ready and self.replies.readline().strip() == "stop" and completed < total:
            raise _Stop("cancelled", "Cancelled by the user while running")

    def on_node(self, name: str, completed: int, total: int, current: str | None) -> None:
        if name.startswith("!"):
            self.failed_node = name[1:]
            return
        self.ask(completed, total, current)

    def main(self, request: RunRequest) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        outcome: dict[str, Any]
        try:
            with _collect_logs(lambda line: self.send(t="log", line=line)):
                results = self.runner._execute(
                    request, lambda total, first: self.ask(0, total, first), self.on_node
                )
            outcome = {"status": "completed", "results": results}
        except _Stop as stop:
            outcome = {"status": stop.status, "error": str(stop)}
        except Exception as error:
            outcome = {
                "status": "failed",
                "error": _error_message(error, self.failed_node),
                "node": self.failed_node,
            }
        self.send(t="end", **outcome)
        self.events.flush()


class _Parent:
    """Reads the child's events until it ends, dies, or runs out of time."""

    def __init__(
        self, pid: int, events: int, replies: int, progress: ProgressSink, deadline: float,
        started: float, cancel_requested: Callable[[], bool] | None = None,
    ) -> None:  # fmt: skip
        self.cancel_requested = cancel_requested
        self.last_heard = time.monotonic()
        self.stopping = False
        self.pid = pid
        self.events = events
        self.replies = replies
        self.progress = progress
        self.deadline = deadline
        self.started = started
        self.lines: list[str] = []
        self.buffer = b""
        self.reaped = False

    def outcome(
        self, status: Status, error: str | None, results: Any = None, node: str | None = None
    ) -> RunOutcome:
        return RunOutcome(status, results, error, node, _joined(self.lines), _since(self.started))

    def supervise(self) -> RunOutcome:
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                message = _timeout_message(self.started, self.deadline)
                self.lines.append(f"{_timestamp()} ERROR kedro_jobs: {message}")
                return self.outcome("timed_out", message)
            ready, _, _ = select.select([self.events], [], [], min(remaining, 1.0))
            if not ready:
                self.poll_cancel()
                continue
            self.last_heard = time.monotonic()
            chunk = os.read(self.events, 65536)
            if not chunk:  # the child is gone without an outcome
                return self.outcome("failed", self.death_message())
            self.buffer += chunk
            while b"\n" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\n", 1)
                done = self.handle(json.loads(raw))
                if done is not None:
                    return done

    def handle(self, event: dict[str, Any]) -> RunOutcome | None:
        kind = event["t"]
        if kind == "log":
            self.lines.append(event["line"])
        elif kind == "progress":
            if self.progress(event["completed"], event["total"], event["current"]):
                self.stop()
        elif kind == "end":
            return self.outcome(
                event["status"], event.get("error"), event.get("results"), event.get("node")
            )
        return None

    def stop(self) -> None:
        if not self.stopping:
            self.stopping = True
            with contextlib.suppress(BrokenPipeError):
                os.write(self.replies, b"stop\n")

    def poll_cancel(self) -> None:
        """While a node runs long, ask (a read, no write) whether a cancel came in."""
        quiet = time.monotonic() - self.last_heard
        if self.cancel_requested is None or self.stopping or quiet < CANCEL_POLL_SECONDS:
            return
        self.last_heard = time.monotonic()
        with contextlib.suppress(Exception):  # best effort: the next progress write also tells
            if self.cancel_requested():
                self.stop()

    def death_message(self) -> str:
        _, status = os.waitpid(self.pid, 0)
        self.reaped = True
        if os.WIFSIGNALED(status):
            how = f"was killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
        else:
            how = f"exited with code {os.WEXITSTATUS(status)}"
        return f"The job's worker process died before the pipeline finished: it {how}"

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def close(self) -> None:
        if not self.reaped:
            self.kill_if_running()
        for fd in (self.events, self.replies):
            with contextlib.suppress(OSError):
                os.close(fd)

    def kill_if_running(self) -> None:
        # The outcome is known; give the child a moment to exit, then make sure it has.
        for _ in range(50):
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.reaped = True
                return
            time.sleep(0.01)
        self.kill()
        os.waitpid(self.pid, 0)
        self.reaped = True
