"""`make dev`: the whole system on this machine, no Docker and no AWS account.

An embedded moto server (or the endpoints in AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>,
e.g. LocalStack), the template's resources, the project's pipeline manifest, the API on
http://127.0.0.1:8000 (the same FastAPI app the Lambda runs), and consumer pollers that call
the consumer's Lambda handler with real SQS event batches, plus one for the dead-letter queue.

Each runs in its own process, supervised: one that dies is restarted, and SIGINT, SIGTERM or
SIGHUP stop them all. The emulator's state (jobs, logs, outputs, queued messages) is kept in
a folder, `.kedro-jobs/` by default, and restored at the next start.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from kedro_jobs_local.banner import banner, console_note
from kedro_jobs_local.endpoints import answers, needs_moto, port_taken
from kedro_jobs_local.lifetime import exit_with_parent, parent_is_make, started, starting
from kedro_jobs_local.moto_server import MotoServer
from kedro_jobs_local.poller import PollerConfig
from kedro_jobs_local.poller_heartbeats import Heartbeat
from kedro_jobs_local.resources import LocalResources, create_resources
from kedro_jobs_local.state_folder import state_folder
from kedro_jobs_local.supervisor import Child, CrashLoop, StartFailed, Stop, Supervisor, spawn
from kedro_jobs_local.template import load_template

logger = logging.getLogger("kedro_jobs_local")

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = ROOT / ".kedro-jobs"

DEFAULT_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "KEDRO_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "KedroJobsLocal",
}


class StartupError(RuntimeError):
    """Something `make dev` needs is not there: said once, clearly, then everything stops."""


def _parameter(template: dict[str, Any], name: str, fallback: str) -> str:
    return str(template.get("Parameters", {}).get(name, {}).get("Default", fallback))


def local_compute_env() -> dict[str, str]:
    """Task backends' jobs (Fargate's) run here as local task processes
    (kedro_jobs_local/tasks.py), so the stack offers every task backend: the API accepts a
    backend only where its setting is set, and locally it says "local" (the backend's own
    resources, an ECS cluster, need an image URI)."""
    from kedro_jobs.core.compute import task_backends

    return {b.offer_env: "local" for b in task_backends()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make dev", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("KEDRO_JOBS_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("KEDRO_JOBS_PORT", "8000")))
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", "5000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "1")))
    parser.add_argument(
        "--project", help="Kedro project (default: KEDRO_PROJECT_PATH or the example)"
    )
    parser.add_argument("--consumer-timeout", help="override the template's ConsumerTimeout (s)")
    parser.add_argument(
        "--sweep-every",
        type=float,
        help="seconds between the sweeper's runs (default: the template's schedule)",
    )
    parser.add_argument("--stack-name", default="kedro-jobs")
    parser.add_argument(
        "--state-dir",
        default=os.environ.get("KEDRO_JOBS_STATE_DIR", str(DEFAULT_STATE_DIR)),
        help="where the emulator's state is kept between runs (default: .kedro-jobs in the "
        "repository; empty: in memory only)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="start empty (the previous state is moved to <state-dir>/previous)",
    )
    parser.add_argument(
        "--data-root",
        default=os.environ.get("JOBS_DATA_ROOT", ""),
        help="JOBS_DATA_ROOT for the consumers: a folder or s3://bucket/prefix "
        "(default: the project folder itself)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="every process's full log on the console (default: one line per job state "
        "change, the full logs in a file the banner names)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, out: TextIO = sys.stderr) -> int:
    args = parse_args(argv)
    starting()
    for key, value in DEFAULT_ENV.items():
        os.environ.setdefault(key, value)
    if args.project:
        os.environ["KEDRO_PROJECT_PATH"] = str(Path(args.project).resolve())
    if args.data_root and "://" not in args.data_root:
        args.data_root = str(Path(args.data_root).resolve())
    os.environ["JOBS_DATA_ROOT"] = args.data_root
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    if not args.verbose:  # this process's own lines (restarts, stops); others' warnings only
        logging.getLogger().setLevel(logging.WARNING)
        logger.setLevel(logging.INFO)
    if parent_is_make():
        # make forwards SIGTERM to this process but waits on SIGINT and SIGHUP for its
        # child: should make go anyway, this stack goes with it.
        exit_with_parent(sig=signal.SIGTERM)

    moto = needs_moto()
    for host, port, what in [(args.host, args.port, "--port")] + (
        [(args.host, args.moto_port, "--moto-port")] if moto else []
    ):
        if port_taken(host, port):
            logger.error("%s:%d is taken (another make dev?): choose another with %s",
                         host, port, what)  # fmt: skip
            return 2
    state_dir = Path(args.state_dir).resolve() if args.state_dir else None
    status_dir = Path(tempfile.mkdtemp(prefix="kedro-jobs-dev-"))
    try:
        with (
            state_folder(state_dir, fresh=args.fresh),
            _logs(args.verbose, state_dir) as logs,
            Supervisor() as supervisor,
        ):
            _run(supervisor, args, moto, state_dir, status_dir, out, logs)
    except Stop as stop:
        logger.info("stopped (%s); nothing left running", stop)
        return 0
    except (CrashLoop, StartFailed, StartupError) as exc:
        logger.error("%s", exc)
        return 1
    finally:
        shutil.rmtree(status_dir, ignore_errors=True)
    return 0


@contextlib.contextmanager
def _logs(verbose: bool, state_dir: Path | None) -> Iterator[Logs | None]:
    """Where the processes' own output goes: the console (``--verbose``), else one file, in
    the state folder (or the temporary folder when the state is kept in memory)."""
    if verbose:
        yield None
        return
    folder = state_dir if state_dir is not None else Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("dev.log" if state_dir is not None else f"kedro-jobs-dev-{os.getpid()}.log")
    with path.open("ab") as handle:
        yield Logs(path, handle.fileno())


@dataclasses.dataclass(frozen=True)
class Logs:
    path: Path
    fd: int


def _run(
    supervisor: Supervisor,
    args: argparse.Namespace,
    moto: bool,
    state_dir: Path | None,
    status_dir: Path,
    out: TextIO,
    logs: Logs | None = None,
) -> None:
    fd = logs.fd if logs is not None else None
    template = load_template()
    overrides = {"ConsumerTimeout": args.consumer_timeout} if args.consumer_timeout else {}
    timeout = float(args.consumer_timeout or _parameter(template, "ConsumerTimeout", "900"))
    batch_size = int(_parameter(template, "BatchSize", "1"))
    me = str(os.getpid())

    if moto:
        moto_state = state_dir / "moto" if state_dir else None

        def start_moto() -> Any:
            server = MotoServer(args.host, args.moto_port, state_dir=moto_state, output=fd)
            return server.start().process

        # A service with an endpoint of its own keeps it (boto3 prefers the per-service one).
        os.environ["AWS_ENDPOINT_URL"] = f"http://{args.host}:{args.moto_port}"
        supervisor.add(Child("moto", start_moto, stage=0, stop_timeout=120))

    def prepare() -> LocalResources:
        res = create_resources(
            stack_name=args.stack_name, parameter_overrides=overrides, template=template
        )
        for function in ("ApiFunction", "ConsumerFunction"):
            os.environ.update(res.function_env(function))
        # The template's data root is the bucket (Lambda's project folder is read-only);
        # locally it is --data-root, by default the project folder, as `kedro run` writes.
        os.environ["JOBS_DATA_ROOT"] = args.data_root
        # Download links of a local data root's outputs point here (never at a Host header).
        os.environ["API_BASE_URL"] = f"http://{args.host}:{args.port}"
        os.environ.update(local_compute_env())
        return res

    res = prepare()
    from kedro_jobs.core.artifacts import ArtifactStore
    from kedro_jobs.core.heartbeats import Heartbeats
    from kedro_jobs.core.manifest import ManifestReader

    # Consumers of an earlier run are gone whatever their heartbeats say.
    Heartbeats(res.bucket).clear()

    from kedro_jobs.runner.project import project_path_from_env

    project = project_path_from_env()

    import boto3

    def subscribe_console() -> None:
        # The console's queue gets the job events (from before its process is up, too: the
        # first jobs' lines are not lost, a warm consumer runs them at once).
        if logs is not None:
            from kedro_jobs_local.console import subscribe

            subscribe(boto3.client("sqs"), boto3.client("events"))

    def after_moto_restart() -> None:
        prepare()  # an in-memory emulator comes back empty; a kept one, as it was
        subscribe_console()  # an in-memory emulator's rules are gone with the rest
        if ManifestReader(ArtifactStore(res.bucket), ttl=0).get() is None:
            from kedro_jobs.consumer.publish_manifest import main as publish

            with contextlib.redirect_stdout(sys.stderr):
                publish([])

    for child in supervisor.children:
        if child.name == "moto":
            child.after_restart = after_moto_restart

    api = f"http://{args.host}:{args.port}"
    api_argv = [
        sys.executable, "-m", "kedro_jobs_local.api",
        "--host", args.host, "--port", str(args.port), "--parent", me,
    ]  # fmt: skip

    def start_api() -> Any:
        return spawn(api_argv, ready=lambda: answers(f"{api}/api/v1/health"), output=fd)

    sqs = boto3.client("sqs")

    def arn_of(url: str) -> str:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attrs["Attributes"]["QueueArn"])

    heartbeat = Heartbeat(res.bucket, status_dir)
    pollers = [
        (
            f"consumer-{i}",
            PollerConfig(
                res.queue_url,
                arn_of(res.queue_url),
                batch_size,
                timeout,
                warm_up="kedro_jobs_local.poller:warm_consumer",
            ),
            "kedro_jobs.consumer.handler:handler",
        )
        for i in range(max(1, args.workers))
    ]
    pollers.append(
        (
            "dead-letters",
            PollerConfig(
                res.dlq_url,
                arn_of(res.dlq_url),
                batch_size=10,
                function_timeout=60,
                function_name="DeadLetterFunction",
            ),
            "kedro_jobs.dead_letters.handler:handler",
        )
    )
    for name, config, handler in pollers:
        argv = [
            sys.executable, "-m", "kedro_jobs_local.poller",
            "--config", json.dumps(dataclasses.asdict(config)), "--handler", handler,
            "--status-file", str(heartbeat.path(name)), "--parent", me,
        ]  # fmt: skip
        queue_name = config.queue_url.rstrip("/").rsplit("/", 1)[-1]
        # A consumer that is stopped hands its job back (at the node boundary, or from the
        # last checkpoint after a grace): time for that, its checkpoint and its writes.
        grace = 20 if name.startswith("consumer") else 5
        child = Child(name, lambda argv=argv: spawn(argv, output=fd), stage=2, stop_timeout=grace)
        child.after_restart = lambda child=child, queue=queue_name: heartbeat.started(child, queue)
        heartbeat.started(child, queue_name)
        if name == "consumer-0":
            _start_first_consumer(supervisor, child, argv, fd, project)
        else:
            supervisor.add(child)
    subscribe_console()
    # After the first consumer has published the manifest: the API lists and checks the
    # pipelines from it.
    supervisor.add(Child("api", start_api, stage=1))
    manifest = ManifestReader(ArtifactStore(res.bucket), ttl=0).get()
    pipelines = sorted(manifest.pipelines) if manifest else []
    # The template's scheduled sweeper, at its rate (kedro_jobs_local/sweeper.py).
    sweeper_argv = [sys.executable, "-m", "kedro_jobs_local.sweeper", "--parent", me]
    if args.sweep_every:
        sweeper_argv += ["--every", str(args.sweep_every)]
    supervisor.add(
        Child("sweeper", lambda: spawn(sweeper_argv, output=fd), stage=2, stop_timeout=5)
    )
    if logs is not None:
        # One line per job state change on the console, from the job events.
        console_argv = [sys.executable, "-m", "kedro_jobs_local.console", "--parent", me]
        supervisor.add(Child("console", lambda: spawn(console_argv), stage=2, stop_timeout=5))
    # EventBridge Scheduler's part: moto keeps schedules, this fires them (scheduler.py).
    scheduler_argv = [sys.executable, "-m", "kedro_jobs_local.scheduler", "--parent", me]
    if state_dir:
        # With the rest of the state (--fresh sets it aside with it).
        scheduler_argv += ["--state-file", str(state_dir / "moto" / "scheduler-fired.json")]
    supervisor.add(
        Child("scheduler", lambda: spawn(scheduler_argv, output=fd), stage=2, stop_timeout=5)
    )

    out.write(banner(res, api, args.workers, project, pipelines, state_dir, args.data_root))
    out.write(console_note(logs.path if logs is not None else None))
    out.flush()
    started()
    supervisor.watch(tick=heartbeat.tick, every=1.0)


def _poller_status(path: Path) -> dict[str, Any]:
    """What a poller last said it does (poller.Status); nothing yet: {}."""
    try:
        found: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found


def _start_first_consumer(
    supervisor: Supervisor, child: Child, argv: list[str], fd: int | None, project: Path
) -> None:
    """The first consumer's first start waits until it polls: it has loaded the Kedro project
    and published its pipeline manifest by then (poller.warm_consumer). A project that cannot
    load stops `make dev` with the consumer's reason. Its restarts wait for nothing, as the
    other pollers' do."""
    status_file = Path(argv[argv.index("--status-file") + 1])

    def polls() -> bool:
        return _poller_status(status_file).get("state") in ("idle", "busy")

    restart = child.start
    child.start = lambda: spawn(argv, ready=polls, output=fd)
    try:
        supervisor.add(child)
    except StartFailed as exc:
        reason = _poller_status(status_file).get("error")
        if reason:
            raise StartupError(f"{reason} (the project at {project})") from exc
        raise
    finally:
        child.start = restart


if __name__ == "__main__":
    raise SystemExit(main())
