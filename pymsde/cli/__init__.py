"""The ``pymsde`` command. Each subcommand lives in its own module of this package and
exposes ``register(subparsers)``, which adds its parser and sets ``func(args) -> int``.

Subcommands: ``simulate``, ``info``, ``plot`` (data), ``train`` (model), ``evaluate`` and
``demo`` (forecasts, baselines, report). Errors that pymsde raises for bad input are printed
as one line (``pymsde: error: ...``) with exit status 2, not as a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from pymsde.util.errors import PymsdeError

# Order in ``pymsde --help``; modules found in this package but not listed come after.
_ORDER = ["demo", "simulate", "info", "plot", "train", "evaluate"]


def _command_modules() -> list[str]:
    found = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    return [m for m in _ORDER if m in found] + sorted(found - set(_ORDER))


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line, like pymsde's own (the usage block is one
    ``--help`` away), exit status 2 as argparse's."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from pymsde import __version__

    parser = _Parser(prog="pymsde", description="Learn stochastic multiscale models from field data.")
    parser.add_argument("--version", action="version", version=f"pymsde {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details (INFO level)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _command_modules():
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PymsdeError as err:
        print(f"pymsde: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:   # a path that cannot be written or read (a directory, no permission, disk full)
        print(f"pymsde: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
