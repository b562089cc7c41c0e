"""The Kedro project as the consumer sees it: a runner of jobs that also lists its
pipelines, loaded once per container, or the reason it could not be."""

from __future__ import annotations

from typing import Any, Protocol

from kedro_jobs.runner.types import ProgressSink, RunOutcome, RunRequest


class Runner(Protocol):
    def run(
        self, request: RunRequest, progress: ProgressSink, *, deadline: float
    ) -> RunOutcome: ...

    def manifest(self) -> dict[str, Any]: ...


class ProjectLoadFailed(Exception):
    """The Kedro project could not be loaded in this container: every job fails with why."""


def project_load_message(exc: BaseException) -> str:
    return f"The Kedro project could not be loaded: {type(exc).__name__}: {exc}"
