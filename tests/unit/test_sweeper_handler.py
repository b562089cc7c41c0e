"""The sweeper is a small zip function: no Kedro, no runner, no client at import."""

from __future__ import annotations

from kedro_jobs_local.sweeper import schedule_seconds
from kedro_jobs_local.template import load_template
from tests.support.fresh_interpreter import import_in_fresh_interpreter, top_level


def test_the_sweeper_handler_imports_no_kedro_and_creates_no_client() -> None:
    result = import_in_fresh_interpreter("kedro_jobs.sweeper.handler")
    assert not {"kedro", "kedro_datasets", "fastapi"} & top_level(result["modules"])
    assert not any(m.startswith("kedro_jobs.runner") for m in result["modules"])
    assert result["clients"] == []


def test_make_dev_sweeps_at_the_template_rate() -> None:
    assert schedule_seconds(load_template()) == 60.0
