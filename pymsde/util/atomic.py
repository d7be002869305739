"""Atomic file writes: a reader never sees a half-written file.

Every writer in pymsde goes through :func:`atomic_path`: it hands out a temporary path in
the destination's folder, and only when the block finishes without an exception is the
temporary file renamed over the destination (``os.replace`` is atomic on POSIX and Windows
when both paths are on one file system, which the same folder guarantees). On an exception
the temporary file is removed and the destination is left as it was.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; move it onto ``dest`` on success.

    ``suffix`` defaults to the destination's own suffix, so libraries that choose a format
    from the file name (numpy's ``.npz``, h5py) see the right one.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # the temporary name must fit the file system's name limit (255 bytes) for any valid dest name
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name[:64]}.", suffix=dest.suffix if suffix is None else suffix,
                               dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates the file 0600; give the result the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:  # make the bytes durable before the rename
            os.fsync(fh.fileno())
        os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(dest: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(dest: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``dest`` atomically."""
    atomic_write_bytes(dest, text.encode("utf-8"))
