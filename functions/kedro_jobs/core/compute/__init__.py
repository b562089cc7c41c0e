"""Where a job runs: the compute backends, one module each, registered here by name.

The job record's ``compute`` field (and a submission's, and a queue message's) names one.
The API refuses one this deployment does not offer; the consumer runs an ``in_consumer``
backend's jobs itself and asks a task backend's launcher for a task for the others; a job
whose node outlives its invocation moves to the backend that ``takes_long_nodes``. Adding a
backend is its module, its name in ``kedro_jobs.names.Compute`` and in ``BACKENDS`` below,
its settings, its template resources and its tests (docs/compute.md, "Adding a backend").
"""

from __future__ import annotations

from collections.abc import Mapping

from kedro_jobs.core.compute.base import (
    CLAIM_FLAG,
    GROUP_FLAG,
    JOB_TAG,
    TASK_ENTRY_POINT,
    TASK_MODULE,
    ComputeBackend,
    InConsumer,
    TaskBackend,
    TaskLauncher,
    client_token,
    task_command,
)
from kedro_jobs.core.compute.fargate import FARGATE, EcsTaskLauncher, started_by
from kedro_jobs.core.compute.lambda_ import LAMBDA
from kedro_jobs.core.settings import Settings
from kedro_jobs.names import COMPUTE_NAMES, DEFAULT_COMPUTE, Compute

BACKENDS: Mapping[str, ComputeBackend] = {b.name: b for b in (LAMBDA, FARGATE)}
DEFAULT: Compute = DEFAULT_COMPUTE

if tuple(BACKENDS) != COMPUTE_NAMES:  # pragma: no cover - a backend registered by half
    raise RuntimeError(f"names.Compute {COMPUTE_NAMES} and BACKENDS {tuple(BACKENDS)} differ")


def backend(name: str | None) -> ComputeBackend:
    """The backend of a ``compute`` value (None: the default). KeyError for an unknown one
    (a validated model never holds one)."""
    return BACKENDS[name or DEFAULT]


def task_backends() -> list[TaskBackend]:
    return [b for b in BACKENDS.values() if isinstance(b, TaskBackend)]


def launchers_from_settings(settings: Settings) -> dict[str, TaskLauncher]:
    """The launchers of the task backends this deployment offers, by backend name."""
    return {b.name: b.launcher(settings) for b in task_backends() if b.offered(settings)}


def long_node_backend(launchers: Mapping[str, TaskLauncher]) -> TaskBackend | None:
    """Where a job on the consumer goes on when a node outlives its invocation: the first
    backend that takes long nodes and has a launcher here (None: the job times out)."""
    for b in task_backends():
        if b.takes_long_nodes and b.name in launchers:
            return b
    return None


def long_group_backend(launchers: Mapping[str, TaskLauncher]) -> TaskBackend | None:
    """Where a fanned-out job's group too long for an invocation runs: the first backend
    that takes long groups and has a launcher here (None: such a job runs on one worker)."""
    for b in task_backends():
        if b.takes_long_groups and b.name in launchers:
            return b
    return None


def launcher_from_settings(settings: Settings) -> TaskLauncher | None:
    """The launcher of this deployment's Fargate tasks (None: no cluster configured). Kept
    for callers from before the registry; new code uses ``launchers_from_settings``."""
    return launchers_from_settings(settings).get(FARGATE.name)


__all__ = [
    "BACKENDS",
    "CLAIM_FLAG",
    "DEFAULT",
    "FARGATE",
    "GROUP_FLAG",
    "JOB_TAG",
    "LAMBDA",
    "TASK_ENTRY_POINT",
    "TASK_MODULE",
    "Compute",
    "ComputeBackend",
    "EcsTaskLauncher",
    "InConsumer",
    "TaskBackend",
    "TaskLauncher",
    "backend",
    "client_token",
    "launcher_from_settings",
    "launchers_from_settings",
    "long_group_backend",
    "long_node_backend",
    "started_by",
    "task_backends",
    "task_command",
]
