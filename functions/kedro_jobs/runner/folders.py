"""Publishing a job's staged files: a file appears whole, and a folder dataset's folder is
replaced whole, so afterwards it holds exactly the files of the job that committed it.

- A file: a rename on a local root (a copy beside, then a rename, across file systems), one
  PUT on S3. A reader sees the old file or the new one.
- A folder replaced whole on a local root: the new folder is built beside the old one (same
  file system), then the two are swapped in one ``renameat2(RENAME_EXCHANGE)``, and the old
  one removed. A reader that opens the path sees the old folder or the new one, never a mix.
  Where the file system cannot exchange, the old folder is renamed aside and the new one
  into place: the path is then missing for the instant between the two renames.
- A folder replaced whole on S3: S3 cannot swap a prefix, and Kedro's readers (a
  PartitionedDataset, pandas, Spark) list a plain prefix, so a pointer or a versioned prefix
  would have to be understood by every reader. So: every new file is PUT (each whole), then
  the files the folder held that this job did not write are deleted. Between the first PUT
  and the last DELETE a reader listing the prefix sees the new files plus stale old ones
  (never a partial file); the window lasts as long as the upload. Commits of one folder are
  serialised by a lock object written with S3's conditional PUT (``If-None-Match: *``), so of
  two jobs committing the same folder the last to commit wins whole, never a mix. (Another
  remote store gets the same copy-then-delete, not serialised.)
- A folder whose dataset appends (see data.py) gets the job's files added, each whole.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any

# A lock older than this is left by a consumer that died while committing: it is broken.
LOCK_STALE_SECONDS = 600.0
# A commit waits this long at most for another job's commit of the same folder.
LOCK_WAIT_SECONDS = 120.0
_LOCK_POLL_SECONDS = 0.1

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class FolderBusy(Exception):
    """Another job kept committing the same folder for longer than a commit may wait."""


def _files(source: Path) -> list[Path]:
    return sorted(p for p in source.rglob("*") if p.is_file())


def _local(fs: Any) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def _s3(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
    return bool({"s3", "s3a"} & set(protocols))


def publish_file(source: Path, target: str, storage_options: dict[str, Any]) -> int:
    import fsspec

    fs, path = fsspec.core.url_to_fs(target, **storage_options)
    size = source.stat().st_size
    if _local(fs):
        _replace_local(source, Path(path))
    else:
        fs.put_file(str(source), path)  # one PUT: readers see the old or the new
    return size


def publish_folder(
    source: Path,
    target: str,
    storage_options: dict[str, Any],
    *,
    whole: bool,
    locks: str,
    lock_wait: float | None = None,
) -> int:
    """Publish a staged folder to ``target``; ``whole``: replacing what is there. ``locks``:
    where lock objects go (the data root's; a target elsewhere locks in its own bucket).
    ``lock_wait``: how long to wait for another job's commit of the folder at most (None:
    LOCK_WAIT_SECONDS)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(target, **storage_options)
    root = root.rstrip("/")
    files = _files(source)
    size = sum(file.stat().st_size for file in files)
    if _local(fs):
        if whole:
            _swap_local(source, Path(root))
        else:
            for file in files:
                _replace_local(file, Path(root) / file.relative_to(source))
        return size
    if not whole:
        _put_all(fs, source, files, root)
        return size
    # Serialised where the store has conditional writes (S3); another remote store gets the
    # same copy-then-delete, without the lock.
    serialised = _s3(fs)
    wait = LOCK_WAIT_SECONDS if lock_wait is None else min(lock_wait, LOCK_WAIT_SECONDS)
    lock = _lock(fs, _lock_path(fs, target, root, locks), wait)
    with lock if serialised else nullcontext():
        written = _put_all(fs, source, files, root)
        fs.invalidate_cache(root)
        stale = [key for key in fs.find(root) if key.rstrip("/") not in written]
        if stale:
            fs.rm(stale)
        fs.invalidate_cache(root)
    return size


def _put_all(fs: Any, source: Path, files: list[Path], root: str) -> set[str]:
    destinations = [f"{root}/{file.relative_to(source).as_posix()}" for file in files]
    if files:  # one call: s3fs uploads the files concurrently, each one PUT
        fs.put([str(file) for file in files], destinations)
    return set(destinations)


# -- local: build beside, then swap ---------------------------------------------------------


def _replace_local(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, destination)  # same file system: atomic
    except OSError:  # another file system (/tmp and the data root): copy beside, then rename
        partial = destination.with_name(f".{destination.name}.{uuid.uuid4().hex[:8]}.partial")
        shutil.copyfile(source, partial)
        os.replace(partial, destination)


def _beside(target: Path, what: str) -> Path:
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.{what}")


def _swap_local(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    new = _beside(target, "new")
    try:
        os.rename(source, new)  # the staging is on the data root's file system
    except OSError:
        shutil.copytree(source, new)
    # Bounded: each turn either swaps, or finds the path changed by another commit.
    for _ in range(1000):
        try:
            exchanged = _exchange(new, target)
        except NotImplementedError:
            try:
                exchanged = _rename_aside(new, target)
            except _Raced:
                continue
        if exchanged is None:  # no folder there yet
            try:
                os.rename(new, target)
                return
            except OSError as error:  # another commit put one there meanwhile
                if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                continue
        _remove(exchanged)
        return
    raise FolderBusy(f"{target} kept changing while this job committed it")


def _exchange(new: Path, target: Path) -> Path | None:
    """Swap ``new`` and ``target`` atomically; returns where the old one now is (``new``),
    None if ``target`` does not exist. NotImplementedError where the kernel or the file
    system cannot exchange."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except AttributeError as error:
        raise NotImplementedError("renameat2") from error
    done = renameat2(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(target), _RENAME_EXCHANGE)
    if done == 0:
        return new
    code = ctypes.get_errno()
    if code == errno.ENOENT and new.exists():
        return None
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        raise NotImplementedError("RENAME_EXCHANGE")
    raise OSError(code, os.strerror(code), str(target))


class _Raced(Exception):
    """Another commit put its folder in place between our two renames: try again."""


def _rename_aside(new: Path, target: Path) -> Path | None:
    """Without an exchange: the old folder aside, the new one into its place."""
    aside = _beside(target, "old")
    try:
        os.rename(target, aside)
    except FileNotFoundError:
        return None
    try:
        os.rename(new, target)
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        _remove(aside)  # what we moved aside was already replaced by that commit
        raise _Raced from error
    return aside


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# -- S3: one committer of a folder at a time ---------------------------------------------------


def _lock_path(fs: Any, target: str, root: str, locks: str) -> str:
    """The lock object of a folder: under the data root's ``.kedro-jobs/locks/`` if the
    folder is on the same store, else under its own bucket's."""
    import fsspec

    name = hashlib.sha256(target.encode()).hexdigest()[:32]
    locks_fs, locks_path = fsspec.core.url_to_fs(locks)
    if type(locks_fs) is type(fs) and locks_path.split("/")[0] == root.split("/")[0]:
        return f"{locks_path.rstrip('/')}/{name}"
    return f"{root.split('/')[0]}/.kedro-jobs/locks/{name}"


@contextmanager
def _lock(fs: Any, path: str, wait: float) -> Iterator[None]:
    body = json.dumps({"owner": uuid.uuid4().hex, "since": time.time()}).encode()
    waited_until = time.monotonic() + wait
    refused = 0
    while True:
        try:
            fs.pipe_file(path, body, mode="create")  # If-None-Match: *; fails if held
            break
        except (FileExistsError, OSError) as error:
            if not _held(fs, path):
                refused += 1
                if refused > 5:  # no lock there, yet the write fails: not contention
                    raise
                continue  # released (or broken) meanwhile
            if time.monotonic() > waited_until:
                raise FolderBusy(
                    f"another job kept committing this folder for the {wait:.0f} s this "
                    f"commit could wait (lock {path})"
                ) from error
            time.sleep(_LOCK_POLL_SECONDS)
    try:
        yield
    finally:
        fs.rm_file(path)


def _held(fs: Any, path: str) -> bool:
    """Whether a live lock is at ``path``; a stale one (its holder died) is removed."""
    try:
        info = fs.info(path, refresh=True)
    except FileNotFoundError:
        return False
    modified = info.get("LastModified")
    age = time.time() - modified.timestamp() if modified is not None else 0.0
    if age > LOCK_STALE_SECONDS:
        with suppress(FileNotFoundError):
            fs.rm_file(path)
        return False
    return True
