"""`make dev`'s state folder (`.kedro-jobs/` by default): locked for one run at a time, its
old content set aside by --fresh."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger("kedro_jobs_local")


@contextlib.contextmanager
def state_folder(path: Path | None, *, fresh: bool) -> Iterator[Path | None]:
    """The state folder, locked for this run. `fresh` moves its old content to
    `<folder>/previous/` (replacing an older one) rather than deleting it."""
    if path is None:
        yield None
        return
    path.mkdir(parents=True, exist_ok=True)
    with (path / "lock").open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise SystemExit(
                f"{path} is in use by another `make dev` (pid {lock.read().strip() or '?'}): "
                "stop it, or give this one its own folder with --state-dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        moto = path / "moto"
        if fresh and moto.exists():
            previous = path / "previous"
            shutil.rmtree(previous, ignore_errors=True)
            previous.mkdir()
            moto.rename(previous / "moto")
            logger.info("--fresh: the previous state is kept in %s", previous)
        yield path
