"""Files on disk: atomic writing (a reader sees the old file or folder or the new one, never half
of one), and content digests for cache keys."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path beside `path`; on success it replaces `path` in one rename.

    On any failure the temporary file is removed and the previous `path` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield Path(tmp)
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yields a temporary folder beside `path`; on success it becomes `path` in one rename. On
    any failure the temporary folder is removed.

    For caches that several processes may build at once (the jobs of a sweep): if a folder is at
    `path` by the end, another process built the same content first, and theirs is kept, never
    replaced, since others may be reading it (replacing it made a concurrent reader of a sweep's
    encoded corpus fail on a file that vanished). A damaged folder is taken away first, with
    `discard_directory`. The files are not synced to disk one by one: a reader must check what it
    reads (checksums).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the folder the usual permissions
    try:
        yield tmp
        try:
            tmp.rename(path)  # fails if another process put a (non-empty) folder there
        except OSError:
            if not path.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def discard_directory(path: str | Path) -> None:
    """Removes the folder `path`, first renaming it aside in one step, so that no process finds a
    half-removed folder at `path`; a no-op if it is gone already (another process discarded it)."""
    path = Path(path)
    aside = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".discarded"))
    try:
        path.rename(aside / path.name)
    except FileNotFoundError:
        pass
    shutil.rmtree(aside, ignore_errors=True)


def write_bytes_atomically(path: str | Path, data: bytes) -> None:
    """Writes `data` to `path` through `atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in chunks (a corpus may not fit in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def file_fingerprint(path: str | Path) -> str:
    """`file_sha256` of an input file, remembered per (path, size, modification time, inode) for
    the life of the process: the tokenizer and encoded-corpus caches both key on the training
    files, which are then read once per run."""
    path = Path(path).resolve()
    stat = path.stat()
    return _remembered_sha256(path, stat.st_size, stat.st_mtime_ns, stat.st_ino)


@functools.lru_cache(maxsize=64)
def _remembered_sha256(path: Path, size: int, mtime_ns: int, inode: int) -> str:  # stat fields: the key
    return file_sha256(path)
