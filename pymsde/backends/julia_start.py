"""Locating and starting Julia for :mod:`pymsde.backends.julia`, without surprises.

``import juliacall`` starts Julia and, through juliapkg, may *download and install Julia*
and packages. pymsde never imports juliacall at ``import pymsde`` time; the loader
(:func:`pymsde.backends.julia.load`) imports it only after :func:`find_julia` located an
existing Julia executable, in this order: ``PYTHON_JULIACALL_EXE``,
``PYTHON_JULIACALL_BINDIR/julia``, ``PYTHON_JULIAPKG_EXE``, the executable juliapkg recorded on
an earlier resolve, juliapkg's own install prefix, ``julia`` on ``PATH``. Set
``PYMSDE_JULIA_ALLOW_INSTALL=1`` to let juliapkg install Julia itself.

For the ``auto`` backend the import runs with juliapkg offline (:func:`import_juliacall` with
``offline=True``): packages already installed are used and the network is never touched.
Offline is in force only while juliacall is imported (that is when juliapkg resolves); the
process environment and juliapkg's settings are restored afterwards (see
:func:`juliapkg_offline`). The first install happens on an explicit ``backend="julia"`` (or
``python -c "import pymsde.backends.julia as j; j.load()"``).

Nothing here starts Julia except :func:`import_juliacall`.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from typing import Iterator

#: The Julia package's name and UUID (julia/Project.toml; pymsde/juliapkg.json must agree).
PACKAGE = "PyMSDEKernels"
PACKAGE_UUID = "8d7d21b3-ee10-4f88-89bd-143484f2f9be"

INSTALL_HINT = ("install the Julia extra with `pip install pymsde[julia]` and make Julia reachable "
                "(a `julia` executable on PATH, or PYTHON_JULIACALL_EXE=/path/to/julia; "
                "PYMSDE_JULIA_ALLOW_INSTALL=1 lets juliapkg download Julia); the first "
                "backend='julia' run installs PyMSDEKernels and its Julia dependencies")

#: juliapkg's switch for offline resolution (``juliapkg/state.py``, ``get_config_bool("offline")``)
OFFLINE_VAR = "PYTHON_JULIAPKG_OFFLINE"


def julia_project_dir() -> str:
    """The ``julia/`` folder of the Julia package (next to the ``pymsde`` package in a source
    checkout or editable install: ``pymsde/juliapkg.json`` points there with ``"../julia"``)."""
    return os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "julia"))


def _juliapkg_places(checked: list[str]) -> tuple[str | None, str]:
    """The executable juliapkg recorded on an earlier resolve, else its install prefix."""
    try:
        from juliapkg.state import STATE as jpstate  # computes paths only; starts nothing
    except ImportError:
        checked.append("juliapkg (not installed)")
        return None, ""
    meta = jpstate.get("meta")
    if meta and os.path.isfile(meta):
        try:
            with open(meta) as fp:
                exe = json.load(fp).get("executable")
        except (OSError, ValueError):
            exe = None
        if exe and shutil.which(exe):
            return exe, f"juliapkg's earlier resolve ({meta})"
    prefix = jpstate.get("install")
    if prefix:
        path = shutil.which(os.path.join(prefix, "bin", "julia"))
        if path:
            return path, f"juliapkg's install prefix {prefix}"
        checked.append(f"juliapkg install prefix {prefix}")
    return None, ""


def find_julia() -> tuple[str | None, str]:
    """Locate an existing Julia executable without starting or installing anything.

    Returns:
        ``(path, how it was found)``, or ``(None, what was checked)``.
    """
    checked: list[str] = []
    for var in ("PYTHON_JULIACALL_EXE", "PYTHON_JULIAPKG_EXE"):
        val = os.environ.get(var)
        if val:
            path = shutil.which(val)
            if path:
                return path, f"{var}={val}"
            checked.append(f"{var}={val} (not an executable)")
    bindir = os.environ.get("PYTHON_JULIACALL_BINDIR")
    if bindir:
        path = shutil.which(os.path.join(bindir, "julia"))
        if path:
            return path, f"PYTHON_JULIACALL_BINDIR={bindir}"
        checked.append(f"PYTHON_JULIACALL_BINDIR={bindir} (no julia in it)")
    path, how = _juliapkg_places(checked)
    if path:
        return path, how
    path = shutil.which("julia")
    if path:
        return path, "julia on PATH"
    checked.append("julia on PATH")
    return None, "no Julia executable found (checked " + ", ".join(checked) + ")"


@contextlib.contextmanager
def juliapkg_offline(offline: bool) -> Iterator[None]:
    """juliapkg offline for the duration of the ``with`` block only.

    juliapkg reads ``PYTHON_JULIAPKG_OFFLINE`` once, when ``juliapkg.state`` is imported
    (``reset_state``), into ``juliapkg.state.STATE["offline"]``, and juliacall's import resolves
    with that (``juliapkg.executable()``, ``juliapkg.project()``). So both are set: the variable,
    for a juliapkg first imported inside the block, and ``STATE["offline"]``, for one imported
    before (:func:`find_julia` imports it). On exit (also when the block raised) the variable
    is removed again and ``STATE["offline"]`` is what it was, or, for a juliapkg imported inside
    the block, what juliapkg reads without the variable. A value the user gave the variable is
    left as it is (and was read by juliapkg already).
    """
    if not offline or os.environ.get(OFFLINE_VAR) is not None:
        yield
        return
    before = sys.modules.get("juliapkg.state")
    old = before.STATE.get("offline") if before is not None else None
    os.environ[OFFLINE_VAR] = "yes"
    if before is not None:
        before.STATE["offline"] = True
    try:
        yield
    finally:
        os.environ.pop(OFFLINE_VAR, None)
        after = sys.modules.get("juliapkg.state")
        if before is not None:
            before.STATE["offline"] = old
        elif after is not None:
            after.STATE["offline"] = after.get_config_bool("offline")[0]


def import_juliacall(offline: bool):
    """Import juliacall (this starts Julia), with juliapkg offline during the import when asked."""
    with juliapkg_offline(offline):
        import juliacall  # noqa: PLC0415 -- deliberately lazy: importing starts Julia

    return juliacall


__all__ = ["PACKAGE", "PACKAGE_UUID", "INSTALL_HINT", "OFFLINE_VAR", "julia_project_dir", "find_julia",
           "juliapkg_offline", "import_juliacall"]
