"""Collects one run's log records (Kedro's and the pipeline code's) as timestamped lines."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def log_line(level: str, name: str, message: str) -> str:
    return f"{timestamp()} {level} {name}: {message}"


# Kedro's runner suggests `kedro run --from-nodes ...` when a run stops early: not how a job
# goes on here (a segment continues by itself; a failed job is retried through the API).
_RESUME_HINT = "You can resume the pipeline run"


class _LineHandler(logging.Handler):
    def __init__(self, emit_line: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.emit_line = emit_line

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # a bad record must not fail the job
            if _RESUME_HINT in str(record.msg):
                return
            line = log_line(record.levelname, record.name, record.getMessage())
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                line += f" [{type(exc).__name__}: {exc}]"
            self.emit_line(line)


@contextlib.contextmanager
def collect_logs(emit_line: Callable[[str], None]) -> Iterator[None]:
    """Send every INFO+ record that reaches the root logger to ``emit_line`` meanwhile."""
    handler = _LineHandler(emit_line)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    if previous == logging.NOTSET or previous > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def joined(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)
