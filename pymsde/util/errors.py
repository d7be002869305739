"""The exceptions pymsde raises for bad input. Each message names the problem: the file,
the field, what was expected and what was found.

Also the two limits every layer checks the same way, before any work: the range of a seed
(:func:`check_seed`) and the memory a size would need (:func:`check_memory`, against
:func:`available_memory`).
"""
from __future__ import annotations

import math
import numbers
import os
from pathlib import Path


class PymsdeError(Exception):
    """Base class of every pymsde error."""


class DataError(PymsdeError, ValueError):
    """A data set or data file is malformed (missing key, wrong shape, non-finite values...)."""


class ConfigError(PymsdeError, ValueError):
    """A configuration is impossible (coarse grid not dividing the fine grid, negative sizes...)."""


class StabilityError(PymsdeError, ValueError):
    """A time step violates the stability limit of the chosen scheme."""


class BackendUnavailableError(PymsdeError, RuntimeError):
    """A compute backend was asked for explicitly but cannot start."""


class TrainingDivergedError(PymsdeError, RuntimeError):
    """Training produced a non-finite loss; the message names the ELBO term that went bad."""


class ResourceError(ConfigError):
    """A size that cannot fit: the memory it needs exceeds what the machine has (refused before allocating)."""


class RunInUseError(ConfigError):
    """Another trainer holds the run directory's lock; the message names it (pid, host, start time)."""


class RunWriteError(PymsdeError, OSError):
    """A run file could not be written (disk full, no permission); the message names the last good checkpoint."""


class TrainingInterrupted(PymsdeError):
    """Training stopped on SIGINT / SIGTERM after saving a checkpoint; ``exit_code`` is 128 + the signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = int(signum)
        self.exit_code = 128 + int(signum)


# ----------------------------------------------------------------------------- seeds

#: The largest seed pymsde accepts (2^63 - 1). torch's generators take seeds below 2^64, but a
#: run's config.toml stores the seed as a TOML integer (64-bit signed) and validation seeds its
#: own generator with ``seed + 7919``, which must stay below 2^64: 2^63 - 1 satisfies both.
SEED_MAX = 2 ** 63 - 1


def check_seed(value, where: str, error: type[PymsdeError] = ConfigError) -> int:
    """``value`` as an int in ``[0, SEED_MAX]``; ``error`` naming ``where`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error(f"{where} = {value!r}; expected an integer seed in [0, 2^63 - 1]")
    value = int(value)
    if not 0 <= value <= SEED_MAX:
        raise error(f"{where} = {value}; expected an integer seed in [0, 2^63 - 1 = {SEED_MAX}]")
    return value


# ----------------------------------------------------------------------------- memory

def format_bytes(n: float) -> str:
    """``1.5 GiB``-style text of a byte count."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if abs(n) < 1024 or unit == "EiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


def _meminfo() -> dict[str, int]:
    out = {}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    out[key] = int(parts[0]) * 1024
    except OSError:
        pass
    return out


def _cgroup_room() -> float:
    """Memory left under this process's cgroup (v2) limit, or inf."""
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            lim = Path(limit).read_text().strip()
            used = Path(usage).read_text().strip()
        except OSError:
            continue
        if lim.isdigit() and used.isdigit() and int(lim) < 2 ** 60:
            return max(0, int(lim) - int(used))
    return math.inf


def available_memory(device: str = "cpu") -> tuple[float, str]:
    """``(bytes, description)``: memory an allocation can still get on ``device``.

    CPU: ``MemAvailable + SwapFree`` of ``/proc/meminfo`` (physical memory from ``os.sysconf``
    where there is no ``/proc``), capped by the cgroup limit. CUDA: the device's free memory.
    """
    if str(device).startswith("cuda"):
        import torch

        free, total = torch.cuda.mem_get_info(torch.device(device))
        return float(free), f"{format_bytes(free)} free of {format_bytes(total)} on {device}"
    info = _meminfo()
    if "MemAvailable" in info:
        avail = info["MemAvailable"] + info.get("SwapFree", 0)
        total = info.get("MemTotal", avail)
    else:
        try:
            total = avail = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # pragma: no cover - no way to ask
            return math.inf, "unknown"
    room = min(float(avail), _cgroup_room())
    return room, f"{format_bytes(room)} available (of {format_bytes(total)} memory)"


def check_memory(nbytes: float, what: str, hint: str = "", device: str = "cpu",
                 error: type[PymsdeError] = ResourceError) -> None:
    """Refuse ``what`` (e.g. ``"data/u: shape (10, 1001, 1, 1000000000) float64"``) when it needs
    more than :func:`available_memory`; the message gives both sizes and ``hint``."""
    room, desc = available_memory(device)
    if nbytes > room:
        raise error(f"{what} would need {format_bytes(nbytes)} of memory; this machine has {desc}"
                    + (f"; {hint}" if hint else ""))


# ----------------------------------------------------------------------------- files

def _kind(st_mode: int) -> str:
    import stat

    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket")):
        if test(st_mode):
            return name
    return "not a regular file"  # pragma: no cover


def check_readable_file(path: str | os.PathLike, what: str, error: type[PymsdeError] = DataError,
                        max_bytes: float | None = None) -> Path:
    """``path`` as a Path when it is a regular file (symlinks followed) of at most ``max_bytes``;
    else ``error`` saying what it is: missing, a directory, a device or a pipe (``/dev/zero``
    never reaches a reader), or too large for ``what``. Without ``max_bytes`` the file must fit
    in :func:`available_memory` (a reader holds it whole)."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        dangling = " (a symbolic link to a missing file)" if path.is_symlink() else ""
        raise error(f"{path}: no such file{dangling}; expected {what}") from None
    except OSError as err:
        raise error(f"{path}: cannot be read ({err.strerror}); expected {what}") from None
    import stat

    link = f" (a symbolic link to {os.path.realpath(path)})" if path.is_symlink() else ""
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{path}: a directory{link}; expected {what}")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: {_kind(st.st_mode)}{link}, not a regular file; expected {what}")
    if max_bytes is not None and st.st_size > max_bytes:
        raise error(f"{path}: {format_bytes(st.st_size)}; expected {what} (at most {format_bytes(max_bytes)})")
    if max_bytes is None:
        check_memory(st.st_size, f"reading {path} ({what})", error=error)
    return path


__all__ = ["PymsdeError", "DataError", "ConfigError", "StabilityError", "BackendUnavailableError",
           "TrainingDivergedError", "ResourceError", "RunInUseError", "RunWriteError", "TrainingInterrupted",
           "SEED_MAX", "check_seed", "format_bytes", "available_memory", "check_memory", "check_readable_file"]
