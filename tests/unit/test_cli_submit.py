"""`kedro-jobs submit`'s flags become the request body the API reads."""

from __future__ import annotations

import pytest

from kedro_jobs.cli.commands import request_body
from kedro_jobs.cli.main import build_parser
from kedro_jobs.cli.render import _segments


def _body(*argv: str) -> dict[str, object]:
    return request_body(build_parser().parse_args(["submit", *argv]))


def test_compute_and_max_job_seconds_are_sent_only_when_given() -> None:
    assert _body("p") == {"pipeline_name": "p", "parameters": {}}
    body = _body("p", "--compute", "fargate", "--max-job-seconds", "3600")
    assert body["compute"] == "fargate" and body["max_job_seconds"] == 3600


def test_an_unknown_compute_is_refused_before_anything_is_sent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        _body("p", "--compute", "gpu")
    assert exited.value.code == 2
    assert "invalid choice: 'gpu'" in capsys.readouterr().err


def test_a_job_in_segments_shows_which_nodes_ran_where() -> None:
    segments = [{"nodes": ["step1"]}, {"nodes": ["step2", "step3"]}]
    assert _segments("lambda", segments) == "lambda, 2 segment(s) (step1 | step2, step3)"
    assert _segments("fargate", []) == "fargate"
