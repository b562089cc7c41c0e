"""The config a job's run reads is read once per env and parameters, before the fork, and
shared by the runs of that shape (runner/shared_config.py): every job still sees the config
as it is on disk and its own parameters, and a resolver whose value may change is still
resolved by each run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from kedro_jobs.runner.runner import Isolation, KedroRunner
from kedro_jobs.runner.shared_config import shared_config
from kedro_jobs.runner.types import RunRequest
from kedro_jobs_local.counting_project import write_project


def _doubled(runner: KedroRunner, job_id: str, params: dict[str, Any] | None = None) -> Any:
    outcome = runner.run(
        RunRequest(job_id, "two_nodes", params or {}, {}),
        lambda *_: False,
        deadline=time.monotonic() + 30,
    )
    assert outcome.status == "completed", outcome.error_message
    assert outcome.results is not None
    return outcome.results["doubled"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("shared") / "p", package="shared_config_project")


@pytest.mark.parametrize("isolation", ["inline", "fork"])
def test_each_job_gets_its_own_parameters_and_the_conf_as_it_is_now(
    project: Path, isolation: Isolation
) -> None:
    parameters = project / "conf" / "base" / "parameters.yml"
    parameters.write_text("x: 3\nseconds: 0.01\n")
    runner = KedroRunner(project, isolation=isolation)
    assert _doubled(runner, "a") == 6
    assert _doubled(runner, "b", {"x": 5}) == 10
    assert _doubled(runner, "c") == 6  # the first shape again, not the one before
    assert shared_config(project, None, None) is not None  # read once, kept
    parameters.write_text("x: 21\nseconds: 0.01\n")
    assert _doubled(runner, "d") == 42
    (project / "conf" / "local" / "parameters.yml").write_text("x: 50\n")
    try:
        assert _doubled(runner, "e") == 100  # a new file (conf/local over conf/base)
    finally:
        (project / "conf" / "local" / "parameters.yml").unlink()
        parameters.write_text("x: 3\nseconds: 0.01\n")
    assert _doubled(runner, "f") == 6


_MARKER_SETTINGS = """
import os
from pathlib import Path

from kedro.config import OmegaConfigLoader

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "custom_resolvers": {
        "marker": lambda: int(Path(os.environ["KEDRO_JOBS_TEST_MARKER"]).read_text()),
    },
}
"""


@pytest.mark.parametrize("isolation", ["inline", "fork"])
def test_a_custom_resolver_is_resolved_by_each_job(
    tmp_path: Path, isolation: Isolation, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = write_project(tmp_path / "p", package=f"marker_project_{isolation}")
    (project / "src" / f"marker_project_{isolation}" / "settings.py").write_text(_MARKER_SETTINGS)
    (project / "conf" / "base" / "parameters.yml").write_text("x: ${marker:}\nseconds: 0.01\n")
    marker = tmp_path / "marker"
    monkeypatch.setenv("KEDRO_JOBS_TEST_MARKER", str(marker))
    marker.write_text("1")
    runner = KedroRunner(project, isolation=isolation)
    assert _doubled(runner, "a") == 2
    marker.write_text("4")  # no conf file changed: only the resolver's value
    assert _doubled(runner, "b") == 8


def test_a_conf_that_interpolates_an_unknown_resolver_is_not_shared(project: Path) -> None:
    KedroRunner(project)  # this project's settings (Kedro's are process-wide)
    catalog = project / "conf" / "base" / "catalog.yml"
    before = catalog.read_text()
    catalog.write_text("report:\n  type: json.JSONDataset\n  filepath: out/${today:}.json\n")
    try:
        assert shared_config(project, None, None) is None
    finally:
        catalog.write_text(before)
    assert shared_config(project, None, None) is not None
