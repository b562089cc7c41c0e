"""What checkpoints (checkpoint.py) and fan-out hand-overs (handover.py) share: their files on
a data root (a local folder or S3, through fsspec), and an index that holds each file's
SHA-256 and is signed with an HMAC under the deployment's ``SIGNING_KEY``. Both are
unpickled when read, so an index is read back only once its signature is checked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class Signer:
    """HMAC-SHA256 under the deployment's signing key. Without one (a runner made with no
    key), a random key of this process: what it signs can then be read back only by it."""

    def __init__(self, key: str | bytes = b"") -> None:
        if isinstance(key, str):
            key = key.encode()
        self.ephemeral = not key
        self._key = key or secrets.token_bytes(32)
        self._warned = False

    def sign(self, payload: bytes) -> str:
        if self.ephemeral and not self._warned:
            self._warned = True
            logger.warning(
                "No checkpoint signing key is configured (SIGNING_KEY): checkpoints "
                "are signed with a key of this process only, so another container cannot "
                "resume them"
            )
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    def verify(self, payload: bytes, signature: object) -> bool:
        return isinstance(signature, str) and hmac.compare_digest(self.sign(payload), signature)


def canonical(index: dict[str, Any]) -> bytes:
    """The bytes an index is signed as."""
    return json.dumps(index, sort_keys=True, separators=(",", ":")).encode()


class Hashing:
    """A binary file that also hashes what is written to it (pickle.dump writes here)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        written: int = self.handle.write(data)
        return written


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def fs_of(location: str) -> tuple[Any, str]:
    """The file system of ``location`` and its path there."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(location)
    return fs, str(path)


def make_dirs(fs: Any, path: str) -> None:
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(fs, LocalFileSystem):  # object stores have no folders to make
        fs.makedirs(path, exist_ok=True)


def read_signed(
    location: str,
    file_name: str,
    field: str,
    signer: Signer,
    *,
    error: type[Exception],
    noun: str,
    what: str,
    unreadable: str = "",
) -> dict[str, Any]:
    """The index under ``field`` of the signed JSON ``file_name`` at ``location``, once its
    signature is checked; else ``error`` saying why: unreadable, unsigned, or altered or
    signed with another key (``noun``: a checkpoint; ``what``: this one, in the texts)."""
    try:
        fs, path = fs_of(location)
        with fs.open(f"{path}/{file_name}", "rb") as handle:
            signed = json.load(handle)
    except Exception as exc:
        raise error(f"{what} is unreadable ({type(exc).__name__}: {exc}){unreadable}") from exc
    index = signed.get(field) if isinstance(signed, dict) else None
    if not isinstance(index, dict) or "signature" not in signed:
        raise error(
            f"{what} is not signed: refused (a {noun} is only read with a valid signature "
            "under this deployment's key)"
        )
    if not signer.verify(canonical(index), signed["signature"]):
        raise error(
            f"{what} was altered or signed with another key: refused (its signature does not "
            "match this deployment's SIGNING_KEY)"
        )
    return index
