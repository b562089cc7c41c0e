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
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from kedro_jobs_local.lifetime import exit_with_parent, parent_is_make
from kedro_jobs_local.moto_server import MotoServer
from kedro_jobs_local.poller import PollerConfig
from kedro_jobs_local.resources import LocalResources, create_resources, load_template
from kedro_jobs_local.supervisor import Child, CrashLoop, StartFailed, Stop, Supervisor, spawn

logger = logging.getLogger("kedro_jobs_local")

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = ROOT / ".kedro-jobs"
# The services the local stack uses; any without an endpoint of its own goes to moto.
SERVICES = ("dynamodb", "sqs", "s3")

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


def external_endpoint() -> str | None:
    """An endpoint the user already set for every service (LocalStack, say)."""
    return os.environ.get("AWS_ENDPOINT_URL") or None


def needs_moto() -> bool:
    """Whether a service of the stack has no endpoint of its own (then moto serves it)."""
    if external_endpoint():
        return False
    return not all(os.environ.get(f"AWS_ENDPOINT_URL_{s.upper()}") for s in SERVICES)


def endpoint_of(service: str) -> str:
    return (
        os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}")
        or os.environ.get("AWS_ENDPOINT_URL")
        or "(AWS)"
    )


def _port_taken(host: str, port: int) -> bool:
    """Someone listens there. (Connections of a previous run still closing do not count:
    the servers bind with SO_REUSEADDR, and so does this check.)"""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own loopback URL
            return True
    except urllib.error.HTTPError:
        return True  # it answered (a 503 is an answer: the API is up)
    except OSError:
        return False


@contextlib.contextmanager
def state_folder(path: Path | None, *, fresh: bool) -> Iterator[Path | None]:
    """The state folder, locked for this run. `fresh` moves its old content to
    `<folder>/previous/` (replacing an older one) rather than deleting it."""
    if path is None:
        yield None
        return
    path.mkdir(parents=True, exist_ok=True)
    with (path / "lock").open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise SystemExit(
                f"{path} is in use by another `make dev` (pid {lock.read().strip() or '?'}): "
                "stop it, or give this one its own folder with --state-dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        moto = path / "moto"
        if fresh and moto.exists():
            previous = path / "previous"
            shutil.rmtree(previous, ignore_errors=True)
            previous.mkdir()
            moto.rename(previous / "moto")
            logger.info("--fresh: the previous state is kept in %s", previous)
        yield path


class Heartbeat:
    """Writes each poller's heartbeat from the small status file it keeps (see poller.py),
    so the API reads consumers through S3 as it would on AWS."""

    def __init__(self, bucket: str, status_dir: Path) -> None:
        from kedro_jobs.core.heartbeats import Heartbeats

        self.beats = Heartbeats(bucket)
        self.status_dir = status_dir
        self.pollers: dict[str, tuple[Child, str, datetime]] = {}
        self._written: dict[str, tuple[float, str]] = {}  # when, and in which state
        self._complained = 0.0

    def path(self, name: str) -> Path:
        return self.status_dir / f"{name}.json"

    def started(self, child: Child, queue_name: str) -> None:
        self.pollers[child.name] = (child, queue_name, datetime.now(UTC))
        self._written.pop(child.name, None)
        # What a dead predecessor last said is not what this one does.
        self.path(child.name).unlink(missing_ok=True)

    def tick(self) -> None:
        """Called every second: a beat for each poller whose state changed (at most one a
        second) or whose last beat is BEAT_SECONDS old."""
        from kedro_jobs.core.errors import DependencyUnavailable
        from kedro_jobs.core.heartbeats import BEAT_SECONDS, ConsumerBeat

        now = datetime.now(UTC)

        def at(seconds: float | None) -> datetime | None:
            return datetime.fromtimestamp(seconds, UTC) if seconds else None

        for name, (child, queue, started) in self.pollers.items():
            if not child.alive():
                continue  # the supervisor is restarting it; its old beat goes stale
            try:
                status = json.loads(self.path(name).read_text())
            except (OSError, ValueError):
                status = {"state": "starting"}
            state = str(status.get("state", "starting"))
            written, was = self._written.get(name, (0.0, ""))
            if state == was and time.monotonic() - written < BEAT_SECONDS:
                continue
            beat = ConsumerBeat(
                consumer=name,
                queue=queue,
                state=state,
                pid=child.pid,
                started_at=started,
                last_poll_at=at(status.get("last_poll_at")),
                busy_until=at(status.get("busy_until")),
                batches=int(status.get("batches", 0)),
                restarts=child.restarts,
                written_at=now,
            )
            try:
                self.beats.beat(beat)
                self._written[name] = (time.monotonic(), state)
            except DependencyUnavailable as exc:
                if time.monotonic() - self._complained > 30:
                    self._complained = time.monotonic()
                    logger.warning("heartbeats not written: %s", exc.reason)
                return


def local_fargate_env(res: LocalResources) -> dict[str, str]:
    """Fargate jobs run here as local task processes (kedro_jobs_local/tasks.py), so the
    stack offers them: the API accepts "compute": "fargate" only when FARGATE_CLUSTER is set,
    and locally it is the template's cluster name (its ECS resources need an image URI)."""
    spec = res.template["Resources"].get("FargateCluster", {}).get("Properties", {})
    name = res.resolver(spec["ClusterName"]) if "ClusterName" in spec else "local"
    return {"FARGATE_CLUSTER": str(name)}


def banner(
    res: LocalResources,
    api: str,
    workers: int,
    project: Path,
    pipelines: list[str],
    state_dir: Path | None,
    data_root: str,
) -> str:
    example = next((p for p in pipelines if p != "__default__"), "__default__")
    endpoints = {s: endpoint_of(s) for s in SERVICES}
    if len(set(endpoints.values())) == 1:
        aws = f"  AWS endpoint   {endpoints['sqs']}\n"
    else:
        aws = "".join(f"  {s + ' endpoint':<15}{url}\n" for s, url in endpoints.items())
    sqs_endpoint = endpoints["sqs"]
    return f"""
kedro-jobs is running locally
  API            {api}/api/v1   (docs: {api}/docs, health: {api}/api/v1/health)
{aws}  region         {os.environ.get("AWS_DEFAULT_REGION")}
  jobs table     {res.table_name}
  queue          {res.queue_url}
  dead letters   {res.dlq_url}
  bucket         {res.bucket}
  Kedro project  {project}
  pipelines      {", ".join(pipelines) or "(none published)"}
  data root      {data_root or "(the project folder)"}
  consumers      {workers}
  state          {state_dir or "(in memory: gone when this stops)"}

Submit over HTTP:
  curl -s -X POST {api}/api/v1/jobs -H 'Content-Type: application/json' \\
       -d '{{"pipeline_name": "{example}", "parameters": {{}}}}'
Or put a message on the queue, as another system would:
  aws --endpoint-url {sqs_endpoint} sqs send-message \\
      --queue-url {res.queue_url} --message-body '{{"version": 1, "pipeline_name": "{example}"}}'
Ctrl-C (or SIGTERM, SIGHUP) stops everything; the state stays for the next start.
"""


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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, out: TextIO = sys.stderr) -> int:
    args = parse_args(argv)
    for key, value in DEFAULT_ENV.items():
        os.environ.setdefault(key, value)
    if args.project:
        os.environ["KEDRO_PROJECT_PATH"] = str(Path(args.project).resolve())
    if args.data_root and "://" not in args.data_root:
        args.data_root = str(Path(args.data_root).resolve())
    os.environ["JOBS_DATA_ROOT"] = args.data_root
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    if parent_is_make():
        # make forwards SIGTERM to this process but waits on SIGINT and SIGHUP for its
        # child: should make go anyway, this stack goes with it.
        exit_with_parent(sig=signal.SIGTERM)

    moto = needs_moto()
    for host, port, what in [(args.host, args.port, "--port")] + (
        [(args.host, args.moto_port, "--moto-port")] if moto else []
    ):
        if _port_taken(host, port):
            logger.error("%s:%d is taken (another make dev?): choose another with %s",
                         host, port, what)  # fmt: skip
            return 2
    state_dir = Path(args.state_dir).resolve() if args.state_dir else None
    status_dir = Path(tempfile.mkdtemp(prefix="kedro-jobs-dev-"))
    try:
        with state_folder(state_dir, fresh=args.fresh), Supervisor() as supervisor:
            _run(supervisor, args, moto, state_dir, status_dir, out)
    except Stop as stop:
        logger.info("stopped (%s); nothing left running", stop)
        return 0
    except (CrashLoop, StartFailed, StartupError) as exc:
        logger.error("%s", exc)
        return 1
    finally:
        shutil.rmtree(status_dir, ignore_errors=True)
    return 0


def _run(
    supervisor: Supervisor,
    args: argparse.Namespace,
    moto: bool,
    state_dir: Path | None,
    status_dir: Path,
    out: TextIO,
) -> None:
    template = load_template()
    overrides = {"ConsumerTimeout": args.consumer_timeout} if args.consumer_timeout else {}
    timeout = float(args.consumer_timeout or _parameter(template, "ConsumerTimeout", "900"))
    batch_size = int(_parameter(template, "BatchSize", "1"))
    me = str(os.getpid())

    if moto:
        moto_state = state_dir / "moto" if state_dir else None

        def start_moto() -> Any:
            server = MotoServer(args.host, args.moto_port, state_dir=moto_state, output=None)
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
        os.environ.update(local_fargate_env(res))
        return res

    res = prepare()
    from kedro_jobs.core.artifacts import ArtifactStore
    from kedro_jobs.core.heartbeats import Heartbeats
    from kedro_jobs.core.manifest import ManifestReader

    # Consumers of an earlier run are gone whatever their heartbeats say.
    Heartbeats(res.bucket).clear()

    from kedro_jobs.consumer.publish_manifest import main as publish
    from kedro_jobs.runner.project import project_path_from_env

    project = project_path_from_env()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            publish([])
    except Exception as exc:
        logger.exception("the Kedro project could not be loaded")
        raise StartupError(f"the Kedro project at {project} could not be loaded: {exc}") from exc
    manifest = ManifestReader(ArtifactStore(res.bucket)).get()
    pipelines = sorted(manifest.pipelines) if manifest else []

    def after_moto_restart() -> None:
        prepare()  # an in-memory emulator comes back empty; a kept one, as it was
        if ManifestReader(ArtifactStore(res.bucket), ttl=0).get() is None:
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
        return spawn(api_argv, ready=lambda: _answers(f"{api}/api/v1/health"))

    supervisor.add(Child("api", start_api, stage=1))

    import boto3

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
            "kedro_jobs.consumer.dlq_handler:handler",
        )
    )
    for name, config, handler in pollers:
        argv = [
            sys.executable, "-m", "kedro_jobs_local.poller",
            "--config", json.dumps(dataclasses.asdict(config)), "--handler", handler,
            "--status-file", str(heartbeat.path(name)), "--parent", me,
        ]  # fmt: skip
        queue_name = config.queue_url.rstrip("/").rsplit("/", 1)[-1]
        child = Child(name, lambda argv=argv: spawn(argv), stage=2, stop_timeout=5)
        child.after_restart = lambda child=child, queue=queue_name: heartbeat.started(child, queue)
        heartbeat.started(child, queue_name)
        supervisor.add(child)
    # The template's scheduled sweeper, at its rate (kedro_jobs_local/sweeper.py).
    sweeper_argv = [sys.executable, "-m", "kedro_jobs_local.sweeper", "--parent", me]
    supervisor.add(Child("sweeper", lambda: spawn(sweeper_argv), stage=2, stop_timeout=5))

    out.write(banner(res, api, args.workers, project, pipelines, state_dir, args.data_root))
    out.flush()
    supervisor.watch(tick=heartbeat.tick, every=1.0)


if __name__ == "__main__":
    raise SystemExit(main())
