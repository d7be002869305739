"""Atomic file writes (a reader never sees a half-written file) and folder locks.

Every writer in pymsde goes through :func:`atomic_path`: it hands out a temporary path in
the destination's folder (``.NAME.tmp-XXXXXXXX.SUFFIX``), and only when the block finishes
without an exception are the bytes made durable (``fsync``) and the temporary file renamed
over the destination (``os.replace`` is atomic on POSIX and Windows when both paths are on
one file system, which the same folder guarantees); the folder is then synced too, so the
rename itself survives a power cut. On an exception the temporary file is removed and the
destination is left as it was. A process killed inside the block (SIGKILL, power cut) can
leave its temporary file behind: :func:`clean_stale_temps` removes those of known names
(a run directory does this when a trainer starts or resumes, under the run's lock).

Write points: each atomic write passes three points, ``"begin"`` (the empty temporary file
exists), ``"written"`` (its bytes are written, not yet renamed) and ``"replaced"`` (the
destination holds the new bytes). :data:`WRITE_HOOK`, when set, is called at each as
``WRITE_HOOK(point, dest)``: the seam the fault-injection tests use to kill a process at
the N-th write point, or to raise ``OSError(ENOSPC)`` there.

:class:`DirectoryLock`: one writer per folder (a run directory: one trainer at a time).
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import json
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: O_EXCL lock files
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: Called as ``WRITE_HOOK(point, dest)`` at every write point (tests only; None in normal use).
WRITE_HOOK: Callable[[str, Path], None] | None = None
#: The marker between a destination's name and the random part of its temporary file's name.
TMP_MARK = ".tmp-"


def _point(point: str, dest: Path) -> None:
    if WRITE_HOOK is not None:
        WRITE_HOOK(point, dest)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:              # pragma: no cover - e.g. Windows: folders cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:              # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; move it onto ``dest`` on success.

    ``suffix`` defaults to the destination's own suffix, so libraries that choose a format
    from the file name (numpy's ``.npz``, h5py) see the right one.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # the temporary name must fit the file system's name limit (255 bytes) for any valid dest name
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name[:64]}{TMP_MARK}",
                               suffix=dest.suffix if suffix is None else suffix, dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        # mkstemp creates the file 0600; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        _point("begin", dest)
        yield tmp_path
        _point("written", dest)
        with open(tmp_path, "rb+") as fh:  # make the bytes durable before the rename
            os.fsync(fh.fileno())
        os.replace(tmp_path, dest)
        _fsync_dir(dest.parent)
        _point("replaced", dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(dest: str | os.PathLike, data: bytes | memoryview) -> None:
    """Write ``data`` to ``dest`` atomically (a full disk is an ``OSError`` with ``errno.ENOSPC``)."""
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def atomic_write_text(dest: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``dest`` atomically."""
    atomic_write_bytes(dest, text.encode("utf-8"))


def atomic_copy(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Copy the file ``src`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


def clean_stale_temps(folder: str | os.PathLike, names: Iterable[str]) -> list[Path]:
    """Remove the temporary files :func:`atomic_path` may have left in ``folder`` for the
    destinations ``names`` (``.NAME.tmp-XXXXXXXX.SUFFIX``, and ``.NAME.XXXXXXXX.SUFFIX`` of older
    pymsde versions); returns the paths removed. Call it only while no other process writes
    these files (a run directory: under its lock)."""
    folder = Path(folder)
    patterns = [re.compile(rf"^\.{re.escape(n[:64])}(?:{re.escape(TMP_MARK)}|\.)[A-Za-z0-9_]{{6,}}"
                           rf"{re.escape(Path(n).suffix)}$") for n in names]
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if entry.is_file(follow_symlinks=False) and any(p.match(entry.name) for p in patterns):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


# ----------------------------------------------------------------------------- locks

class DirectoryLock:
    """An exclusive, advisory lock of a folder: a lock file held with ``flock`` (``O_EXCL``
    creation where there is no ``fcntl``), holding the holder's pid, host and start time.

    The kernel drops a dead process's ``flock``, so a lock file left by a killed process is
    taken over (with a warning naming it). :meth:`release` removes the file; with
    ``refused=True`` it leaves it as it was found (a refused command changes nothing on disk).

    Args:
        path: the lock file (its folder must exist).
        holder: what holds it, in messages (e.g. ``"trainer"``).
        advice: the end of the refusal message (what to do).
    """

    def __init__(self, path: str | os.PathLike, holder: str = "process", advice: str = ""):
        self.path = Path(path)
        self.holder, self.advice = holder, advice
        self.fd: int | None = None
        self.previous: bytes | None = None

    @property
    def held(self) -> bool:
        return self.fd is not None

    def _refuse(self, text: bytes):
        from pymsde.util.errors import RunInUseError

        try:
            h = json.loads(text.decode("utf-8"))
            who = f"pid {h['pid']} on host {h['host']}, started {h['started']}"
        except (ValueError, KeyError, TypeError):
            who = "a process that has not written its details yet"
        return RunInUseError(f"{self.path.parent} is in use by another {self.holder} ({who}; lock file {self.path})"
                             + (f"; {self.advice}" if self.advice else ""))

    def probe(self) -> None:
        """Raise the refusal :meth:`acquire` would raise, without taking the lock or writing anything."""
        if fcntl is None or not self.path.is_file():
            return
        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            self._flock(fd)
        finally:
            os.close(fd)

    def _flock(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise self._refuse(os.pread(fd, 4096, 0)) from None
            raise

    def _open_locked(self) -> int | None:
        """An fd of the lock file holding the lock, or None when the file was replaced meanwhile."""
        if fcntl is None:  # pragma: no cover - Windows
            return self._open_excl()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            self._flock(fd)
            same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            same = False
        except BaseException:
            os.close(fd)
            raise
        if not same:                 # the holder removed the file as we opened it: try again
            os.close(fd)
            return None
        return fd

    def _open_excl(self) -> int:  # pragma: no cover - Windows
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            text = self.path.read_bytes()
            try:
                h = json.loads(text)
                alive = h["host"] != socket.gethostname() or _pid_alive(int(h["pid"]))
            except (ValueError, KeyError, TypeError):
                alive = True
            if alive:
                raise self._refuse(text) from None
            self.previous = text
            self.path.unlink()
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)

    def acquire(self) -> "DirectoryLock":
        """Take the lock, or raise :class:`~pymsde.util.errors.RunInUseError` naming the holder."""
        for _ in range(20):
            existed = self.path.exists()
            fd = self._open_locked()
            if fd is None:
                continue
            old = os.pread(fd, 4096, 0)
            if old:
                log.warning("%s: taking over the stale lock of a %s that is gone (%s)", self.path.parent,
                            self.holder, old.decode("utf-8", "replace").strip())
            if existed:
                self.previous = old if self.previous is None else self.previous
            info = {"pid": os.getpid(), "host": socket.gethostname(),
                    "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                    "argv": " ".join(sys.argv)[:500]}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
            self.fd = fd
            return self
        from pymsde.util.errors import RunInUseError

        raise RunInUseError(f"{self.path}: the lock file keeps changing; another {self.holder} is starting there")

    def release(self, refused: bool = False) -> None:
        """Give the lock back: remove the lock file (``refused``: restore it as it was found)."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            if refused and self.previous is not None:
                os.ftruncate(fd, 0)
                os.pwrite(fd, self.previous, 0)
            else:
                os.unlink(self.path)
        except OSError:
            pass
        finally:
            os.close(fd)
            self.previous = None


def _pid_alive(pid: int) -> bool:  # pragma: no cover - Windows fallback only
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "atomic_copy", "clean_stale_temps",
           "WRITE_HOOK", "TMP_MARK", "DirectoryLock"]
