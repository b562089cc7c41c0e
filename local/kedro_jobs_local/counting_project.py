"""A small real Kedro project written into a directory, like Kedro's own tests do, for the
tests and the load benchmark. Its nodes append their names to the file named by
$KEDRO_JOBS_TEST_RECORD, so "ran exactly once" is counted, not assumed."""

from __future__ import annotations

import os
import textwrap
from collections import Counter
from pathlib import Path

RECORD_VAR = "KEDRO_JOBS_TEST_RECORD"

# The head of a test project's nodes.py: _record(name) appends a node's name to the record.
RECORDING_NODES = """
import os


def _record(name):
    path = os.environ.get("KEDRO_JOBS_TEST_RECORD")
    if path:
        with open(path, "a") as handle:
            handle.write(name + "\\n")
"""

_NODES = """
import os
import time


def _record(name, value=None):
    path = os.environ.get("KEDRO_JOBS_TEST_RECORD")
    if path:
        if value is not None and os.environ.get("KEDRO_JOBS_TEST_RECORD_VALUES"):
            name = f"{name} {value}"
        with open(path, "a") as handle:
            handle.write(f"{name}\\n")


def start(x):
    _record("start", x)
    return x


def double(value):
    _record("double", value)
    return value * 2


def boom(value):
    _record("boom")
    raise ValueError(f"boom at {value}")


def nap(value, seconds):
    _record("nap", value)
    time.sleep(seconds)
    return value


def finish(value):
    _record("finish", value)
    return {"value": value}


def step(value, seconds):
    _record("step", value)
    time.sleep(seconds)
    return value + 1


def big(value):
    _record("big")
    return list(range(20_000))


def die(value):
    _record("die")
    os._exit(3)


def kill_consumer(value):
    # The job's code takes its consumer down with it (as an out-of-memory kill would).
    _record("kill_consumer")
    import signal
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(30)
"""

_REGISTRY = """
from kedro.pipeline import Pipeline, node, pipeline

from {package}.nodes import big, boom, die, double, finish, kill_consumer, nap, start, step


def register_pipelines():
    two = pipeline([
        node(start, "params:x", "started", name="start"),
        node(double, "started", "doubled", name="double"),
    ])
    failing = pipeline([
        node(start, "params:x", "started", name="start"),
        node(boom, "started", "never", name="boom"),
    ])
    slow = pipeline([
        node(start, "params:x", "started", name="start"),
        node(nap, ["started", "params:seconds"], "napped", name="nap"),
        node(finish, "napped", "finished", name="finish"),
    ])
    slow_start = pipeline([
        node(nap, ["params:x", "params:seconds"], "napped", name="nap"),
        node(finish, "napped", "finished", name="finish"),
    ])
    return {{
        "__default__": two,
        "slow_start": slow_start,
        "two_nodes": two,
        "failing": failing,
        "slow": slow,
        "big": pipeline([node(big, "params:x", "numbers", name="big")]),
        # Three slow nodes passing in-memory values: a job longer than one invocation.
        "steps": pipeline([
            node(step, ["params:x", "params:seconds"], "one", name="step1"),
            node(step, ["one", "params:seconds"], "two", name="step2"),
            node(step, ["two", "params:seconds"], "three", name="step3"),
        ]),
        "crash": pipeline([node(die, "params:x", "never", name="die")]),
        "kills_consumer": pipeline([
            node(start, "params:x", "started", name="start"),
            node(kill_consumer, "started", "never", name="kill_consumer"),
        ]),
    }}
"""


def write_pyproject(root: Path, package: str) -> None:
    """The `[tool.kedro]` table Kedro bootstraps a project from."""
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [tool.kedro]
            package_name = "{package}"
            project_name = "{package}"
            kedro_init_version = "1.7.0"
            source_dir = "src"
            """
        )
    )


def write_kedro_project(
    root: Path,
    package: str,
    nodes: str,
    registry: str,
    *,
    catalog: str = "{}\n",
    parameters: str = "",
    files: dict[str, str] | None = None,
) -> Path:
    """Write a Kedro project under ``root`` (created) from its parts and return its path:
    pyproject.toml, conf/base (``catalog``, ``parameters``), an empty conf/local, and the
    package with ``nodes`` (nodes.py) and ``registry`` (pipeline_registry.py; ``{package}``
    in it is the package's name). ``files``: more files, by path under ``root``
    (``{package}`` in a path is the package's name)."""
    src = root / "src" / package
    src.mkdir(parents=True)
    for folder in ("conf/base", "conf/local"):
        (root / folder).mkdir(parents=True)
    write_pyproject(root, package)
    (root / "conf" / "base" / "catalog.yml").write_text(catalog)
    (root / "conf" / "base" / "parameters.yml").write_text(parameters)
    (src / "__init__.py").write_text("")
    (src / "settings.py").write_text("")
    (src / "nodes.py").write_text(nodes)
    (src / "pipeline_registry.py").write_text(registry.format(package=package))
    for name, text in (files or {}).items():
        path = root / name.format(package=package)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def write_project(root: Path, package: str = "counting_project") -> Path:
    """Write the project under ``root`` and return its path."""
    return write_kedro_project(
        root, package, nodes=_NODES, registry=_REGISTRY, parameters="x: 3\nseconds: 0.01\n"
    )


def executions(record: Path) -> Counter[str]:
    if not record.exists():
        return Counter()
    return Counter(line for line in record.read_text().splitlines() if line)


def use_record(path: Path) -> None:
    os.environ[RECORD_VAR] = str(path)


def counting_stack_env(root: Path, package: str) -> tuple[dict[str, str], Path]:
    """A counting project under ``root`` and the environment that makes `make dev` run it,
    recording every node run with its value; returns (env, record file)."""
    project = write_project(root / "project", package=package)
    record = root / "executions.txt"
    env = {
        "KEDRO_PROJECT_PATH": str(project),
        RECORD_VAR: str(record),
        "KEDRO_JOBS_TEST_RECORD_VALUES": "1",
    }
    return env, record
