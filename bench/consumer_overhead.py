"""Consumer overhead per job (the headline): the consumer handler processing a one-record SQS
event for the two-node `hello` pipeline, against (a) the old design's `kedro run --pipeline`
in a subprocess and (b) the floor, the same pipeline run by Kedro's Python API in this
process with no job service around it. Interleaved rounds; medians; ratios."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "local" / "example_project"
CONSUMER_LOGGING = ROOT / "functions" / "kedro_jobs" / "runner" / "kedro_logging.yml"


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(rounds: int = 15, subprocess_every: int = 3) -> dict[str, Any]:
    # Kedro reads its logging config when first imported. The consumer's (plain lines on
    # stderr, set before Kedro's import as in Lambda) for the floor and the service alike,
    # not Kedro's default rich console, whichever of them imports Kedro first.
    os.environ.setdefault("KEDRO_LOGGING_CONFIG", str(CONSUMER_LOGGING))
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from kedro.runner import SequentialRunner

    from kedro_jobs.consumer import handler as consumer_handler
    from kedro_jobs_local.lambda_context import LocalContext
    from kedro_jobs_local.lambda_events import sqs_event

    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}
    kedro_cli = str(Path(sys.executable).with_name("kedro"))

    def old_design() -> None:
        subprocess.run(
            [kedro_cli, "run", "--pipeline", "hello"],
            cwd=PROJECT, env=env, check=True, capture_output=True,
        )  # fmt: skip

    def floor() -> None:
        with KedroSession.create(project_path=PROJECT) as created:
            session: Any = created
            session.run(pipeline_names=["hello"], runner=SequentialRunner())

    counter = iter(range(10**9))

    def service(isolation: str) -> Callable[[], None]:
        def run() -> None:
            os.environ["RUN_ISOLATION"] = isolation
            body = json.dumps(
                {"version": 1, "pipeline_name": "hello", "idempotency_key": f"b{next(counter)}"}
            )
            result = consumer_handler.handler(sqs_event(body), LocalContext(60))
            assert result == {"batchItemFailures": []}, result

        return run

    # Warm everything once: bootstrap, first session, clients.
    bootstrap_project(PROJECT)
    floor()
    service("fork")()
    samples: dict[str, list[float]] = {
        "floor": [],
        "handler_fork": [],
        "handler_inline": [],
        "aws_wait_per_job": [],
        "kedro_run_subprocess": [],
    }
    consumer = consumer_handler.consumer()
    runner = consumer.runner
    waited = _AwsWait(consumer.store.client, consumer.artifacts.client)
    for i in range(rounds):
        samples["floor"].append(_timed(floor))
        runner.isolation = "fork"  # type: ignore[attr-defined]
        waited.total = 0.0
        samples["handler_fork"].append(_timed(service("fork")))
        samples["aws_wait_per_job"].append(waited.total)
        runner.isolation = "inline"  # type: ignore[attr-defined]
        samples["handler_inline"].append(_timed(service("inline")))
        if i % subprocess_every == 0:
            samples["kedro_run_subprocess"].append(_timed(old_design))
    runner.isolation = "fork"  # type: ignore[attr-defined]
    samples.update(_profile(consumer, service("fork"), rounds))
    medians = {k: statistics.median(v) for k, v in samples.items()}
    floor_plus_writes = 1.5 * medians["floor"] + medians["aws_wait_per_job"]
    return {
        "rounds": rounds,
        "median_seconds": medians,
        "speedup_vs_kedro_run": medians["kedro_run_subprocess"] / medians["handler_fork"],
        "speedup_vs_kedro_run_inline": medians["kedro_run_subprocess"] / medians["handler_inline"],
        "ratio_to_floor": medians["handler_fork"] / medians["floor"],
        "target_floor_x1_5_plus_aws_seconds": floor_plus_writes,
        "ratio_to_target_floor_plus_aws": medians["handler_fork"] / floor_plus_writes,
    }


def _profile(consumer: Any, job: Callable[[], None], rounds: int) -> dict[str, list[float]]:
    """Where a job's time goes: the runner alone (no AWS, no-op progress) inline and forked,
    and the handler around a runner that does nothing (the service's own code and its AWS
    requests), with its AWS wait."""
    from kedro_jobs.runner.types import RunOutcome, RunRequest

    runner = consumer.runner
    request = RunRequest("bench", "hello", {}, {})

    def run_alone(isolation: str) -> Callable[[], None]:
        def run() -> None:
            runner.isolation = isolation
            outcome = runner.run(request, lambda *_: False, deadline=time.monotonic() + 60)
            assert outcome.status == "completed", outcome.error_message

        return run

    class _NoKedro:
        def fan_out_plan(self, request: Any) -> None:
            return None  # one worker, as the two-node hello job is run

        def run(self, request: Any, progress: Any, *, deadline: float) -> RunOutcome:
            progress(1, 2, "double")  # the one progress write a two-node job makes
            return RunOutcome(
                "completed", {"doubled": 2}, error_message=None, log="a log line\n", duration=0.0
            )

    samples: dict[str, list[float]] = {
        "runner_inline_no_aws": [],
        "runner_fork_no_aws": [],
        "handler_without_kedro": [],
        "aws_wait_without_kedro": [],
    }
    waited = _AwsWait(consumer.store.client, consumer.artifacts.client)
    for _ in range(rounds):
        samples["runner_inline_no_aws"].append(_timed(run_alone("inline")))
        samples["runner_fork_no_aws"].append(_timed(run_alone("fork")))
        consumer._runner = _NoKedro()
        try:
            waited.total = 0.0
            samples["handler_without_kedro"].append(_timed(job))
            samples["aws_wait_without_kedro"].append(waited.total)
        finally:
            consumer._runner = runner
    runner.isolation = "fork"
    return samples


class _AwsWait:
    """Seconds the consumer spends waiting on DynamoDB and S3 (its writes), per job."""

    def __init__(self, *clients: Any) -> None:
        self.total = 0.0
        self._sent = 0.0
        for client in clients:
            client.meta.events.register("before-send", self._before)
            client.meta.events.register("after-call", self._after)

    def _before(self, **_: Any) -> None:
        self._sent = time.perf_counter()

    def _after(self, **_: Any) -> None:
        self.total += time.perf_counter() - self._sent


if __name__ == "__main__":
    from kedro_jobs_local.moto_server import running_moto
    from kedro_jobs_local.resources import create_resources

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
    os.environ["KEDRO_PROJECT_PATH"] = str(PROJECT)
    with running_moto() as moto:
        os.environ["AWS_ENDPOINT_URL"] = moto.endpoint_url
        res = create_resources(endpoint_url=moto.endpoint_url)
        os.environ.update(res.function_env("ConsumerFunction"))
        print(json.dumps(measure(), indent=2))
