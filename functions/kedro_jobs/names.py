"""Facts about names that every function states the same way: what a job id looks like, what
a caller is told about an unknown pipeline, the compute backends' names. No imports but the
standard library, so every package may use it, the runner included (which may not import the
core)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal, get_args

# The owner of a job made with no identity, and the prefix of a machine client's identity:
# no caller may name itself either (the API answers 403, a queue message is refused).
ANONYMOUS = "anonymous"
CLIENT_PREFIX = "client:"


def reserved_user(name: str) -> bool:
    return name == ANONYMOUS or name.startswith(CLIENT_PREFIX)


# Any id the API or a queue message gives a job; an id of another shape names no job.
JOB_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
JOB_ID = re.compile(JOB_ID_PATTERN)


def unknown_pipeline_message(name: str, known: Iterable[str] | None) -> str:
    """``known``: the project's pipeline names; None where no manifest has been published."""
    listed = "(no manifest published)" if known is None else ", ".join(sorted(known)) or "(none)"
    return f"Unknown pipeline {name!r}. Known pipelines: {listed}"


# Where a job runs: the record's ``compute`` values, one per backend module of
# kedro_jobs.core.compute (registered there in BACKENDS; its import checks the two agree).
# Here so that the command line, which may not import the core, offers the same choices.
Compute = Literal["lambda", "fargate"]
COMPUTE_NAMES: tuple[str, ...] = get_args(Compute)
DEFAULT_COMPUTE: Compute = "lambda"
