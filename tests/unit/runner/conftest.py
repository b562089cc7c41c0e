"""A small real Kedro project in tmp_path for the runner tests: the shared counting project
(every node appends its name to a record file, so "ran once" is counted) plus pipelines with
DataFrame outputs, tags, and a node that leaves a subprocess behind."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kedro_jobs.runner.runner import KedroRunner
from kedro_jobs.runner.types import RunOutcome, RunRequest
from kedro_jobs_local.counting_project import RECORD_VAR, write_project

_EXTRA_NODES = """
import subprocess
import time

import pandas as pd

from {package}.nodes import _record


def make_table(x):
    _record("make_table")
    return pd.DataFrame({{"n": range(x), "square": [i * i for i in range(x)]}})


def summarise(table):
    _record("summarise")
    return {{"rows": len(table), "mean_square": float(table["square"].mean()),
             "undefined": float("nan")}}


def top(table):
    _record("top")
    return table.sort_values("square", ascending=False).head(6)


def spawn_and_sleep(x):
    _record("spawn")
    with open("{pid_file}", "w") as handle:
        handle.write(str(subprocess.Popen(["sleep", "30"]).pid))
    time.sleep(30)
"""

_REGISTRY = """
import os

from kedro.pipeline import node, pipeline

from {package}.base_registry import register_pipelines as base_pipelines
from {package}.extra_nodes import make_table, spawn_and_sleep, summarise, top
from {package}.nodes import double, finish, start


def register_pipelines():
    calls = os.environ.get("KEDRO_JOBS_TEST_REGISTRY_CALLS")
    if calls:
        with open(calls, "a") as handle:
            handle.write("register_pipelines\\n")
    pipelines = base_pipelines()
    pipelines["frame"] = pipeline([
        node(make_table, "params:x", "table", name="make_table"),
        node(summarise, "table", "summary", name="summarise"),
        node(top, "table", "top", name="top"),
    ])
    pipelines["tagged"] = pipeline([
        node(start, "params:x", "started", name="start", tags=["prep"]),
        node(double, "params:x", "doubled", name="double", tags=["core"]),
        node(finish, "doubled", "finished", name="finish", tags=["report"]),
    ])
    pipelines["spawner"] = pipeline([node(spawn_and_sleep, "params:x", "never", name="spawn")])
    # Its first node's input is in no catalog: the run fails before any node runs.
    pipelines["needs_input"] = pipeline([node(summarise, "no_such_table", "s", name="summarise")])
    return pipelines
"""


def write_runner_project(root: Path, package: str) -> Path:
    project = write_project(root, package=package)
    src = project / "src" / package
    (src / "pipeline_registry.py").rename(src / "base_registry.py")
    pid_file = root.parent / "spawned.pid"  # outside the project, which stays untouched
    (src / "extra_nodes.py").write_text(_EXTRA_NODES.format(package=package, pid_file=pid_file))
    (src / "pipeline_registry.py").write_text(_REGISTRY.format(package=package))
    return project


@pytest.fixture(scope="session")
def runner_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_runner_project(tmp_path_factory.mktemp("runner") / "p", "runner_project")


@pytest.fixture(scope="session")
def runner(runner_project: Path) -> KedroRunner:
    return KedroRunner(runner_project, isolation="inline")


@pytest.fixture(params=["inline", "fork"])
def isolated(request: pytest.FixtureRequest, runner: KedroRunner) -> Iterator[KedroRunner]:
    """The shared runner, once in each isolation mode."""
    runner.isolation = request.param
    try:
        yield runner
    finally:
        runner.isolation = "inline"


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file every node of the test project appends its name to (forked children
    inherit the variable)."""
    path = tmp_path / "executions.txt"
    monkeypatch.setenv(RECORD_VAR, str(path))
    return path


def run(
    runner: KedroRunner,
    pipeline: str,
    params: dict[str, Any] | None = None,
    *,
    progress: Any = None,
    seconds: float = 30,
    options: dict[str, Any] | None = None,
    **more_options: Any,
) -> RunOutcome:
    return runner.run(
        RunRequest("job-1", pipeline, params or {}, {**(options or {}), **more_options}),
        progress or (lambda *_: False),
        deadline=time.monotonic() + seconds,
    )


def zombie_children() -> list[int]:
    """This process's children that have exited but were not reaped."""
    zombies = []
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        for pid in children.read_text().split():
            stat = Path(f"/proc/{pid}/stat")
            if stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                zombies.append(int(pid))
    return zombies


def no_zombies_soon(seconds: float = 5.0) -> bool:
    """Every forked child is reaped: at once after a stop, a moment later after an outcome
    (a background thread reaps it while the outcome is recorded)."""
    deadline = time.monotonic() + seconds
    while zombie_children():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture(scope="session")
def data_runner(tmp_path_factory: pytest.TempPathFactory) -> KedroRunner:
    """A runner on the realistic data project, committing to a data root of its own (so the
    project's folder keeps only what it shipped) and staging in a folder the tests watch."""
    from tests.support.data_project import write_data_project

    base = tmp_path_factory.mktemp("data")
    os.environ.setdefault("MPLCONFIGDIR", str(base / "mpl"))
    project = write_data_project(base / "project")
    return KedroRunner(
        project,
        isolation="inline",
        data_root=str(base / "root"),
        staging_dir=str(base / "staging"),
    )


@pytest.fixture
def data_isolated(
    request: pytest.FixtureRequest, data_runner: KedroRunner
) -> Iterator[KedroRunner]:
    """The data runner in one isolation mode (parametrised by the test), on an empty data
    root."""
    import shutil

    shutil.rmtree(data_runner.data_root, ignore_errors=True)
    data_runner.isolation = getattr(request, "param", "fork")
    try:
        yield data_runner
    finally:
        data_runner.isolation = "inline"


@pytest.fixture(scope="session")
def continuation_runner(tmp_path_factory: pytest.TempPathFactory) -> KedroRunner:
    """A runner on the three-node continuation project, staging in a folder the tests
    watch; each test gives it a data root of its own."""
    from tests.support.continuation_project import write_continuation_project

    base = tmp_path_factory.mktemp("continuation")
    project = write_continuation_project(base / "project")
    return KedroRunner(project, isolation="inline", staging_dir=str(base / "staging"))


@pytest.fixture(params=["inline", "fork"])
def continuing(
    request: pytest.FixtureRequest, continuation_runner: KedroRunner, tmp_path: Path
) -> Iterator[KedroRunner]:
    """The continuation runner in each isolation mode, on an empty data root."""
    continuation_runner.isolation = request.param
    continuation_runner.data_root = str(tmp_path / "root")
    try:
        yield continuation_runner
    finally:
        continuation_runner.isolation = "inline"
        continuation_runner.data_root = ""


@pytest.fixture(scope="session")
def folder_runner(tmp_path_factory: pytest.TempPathFactory) -> KedroRunner:
    """A runner on the folder project (folder datasets), committing to a data root of its
    own on the staging's file system."""
    from tests.support.folder_project import write_folder_project

    base = tmp_path_factory.mktemp("folders")
    project = write_folder_project(base / "project")
    return KedroRunner(
        project, isolation="inline", data_root=str(base / "root"), staging_dir=str(base / "staging")
    )


@pytest.fixture
def folders(folder_runner: KedroRunner) -> KedroRunner:
    """The folder runner on an empty data root."""
    import shutil

    shutil.rmtree(folder_runner.data_root, ignore_errors=True)
    return folder_runner


@pytest.fixture(scope="session")
def rerun_runner(tmp_path_factory: pytest.TempPathFactory) -> KedroRunner:
    """A runner on the four-node rerun project (tests/support/rerun_project.py), whose third
    node fails while a marker file exists."""
    from tests.support.rerun_project import write_rerun_project

    base = tmp_path_factory.mktemp("rerun")
    project = write_rerun_project(base / "project")
    return KedroRunner(project, isolation="inline", staging_dir=str(base / "staging"))


@pytest.fixture(params=["inline", "fork"])
def rerunning(
    request: pytest.FixtureRequest,
    rerun_runner: KedroRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[KedroRunner]:
    """The rerun runner in each isolation mode, on an empty data root, its marker file (at
    ``tmp_path / "marker"``, absent until a test makes it) named in the environment."""
    from tests.support.rerun_project import MARKER_VAR

    monkeypatch.setenv(MARKER_VAR, str(tmp_path / "marker"))
    rerun_runner.isolation = request.param
    rerun_runner.data_root = str(tmp_path / "root")
    try:
        yield rerun_runner
    finally:
        rerun_runner.isolation = "inline"
        rerun_runner.data_root = ""


@pytest.fixture
def forking(runner: KedroRunner) -> Iterator[KedroRunner]:
    """The runner, forking a child per job (and letting a child forked ahead go after)."""
    from kedro_jobs.runner import forked

    runner.isolation = "fork"
    try:
        yield runner
    finally:
        runner.isolation = "inline"
        forked.discard_ahead()
