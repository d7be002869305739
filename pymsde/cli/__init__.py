"""The ``pymsde`` command. Each subcommand lives in its own module of this package and
exposes ``register(subparsers)``, which adds its parser and sets ``func(args) -> int``.

Subcommands: ``simulate``, ``merge-shards``, ``import`` (PDEBench files), ``info``, ``plot``
(data), ``train`` (model), ``evaluate``, ``benchmark`` and ``demo`` (forecasts, baselines,
report). Errors that pymsde raises for bad input are printed
as one line (``pymsde: error: ...``) with exit status 2, not as a traceback; so are a full
disk and other OS errors. A training run stopped by SIGINT / SIGTERM prints one line
(``pymsde: interrupted by SIGINT at step N ...``) and exits 130 / 143 after saving its
checkpoint. Text that cannot be encoded for the terminal (a non-UTF-8 file name) is escaped.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import pkgutil
import sys

from pymsde.util.errors import PymsdeError, TrainingInterrupted

# Order in ``pymsde --help``; modules found in this package but not listed come after.
_ORDER = ["demo", "simulate", "merge_shards", "import_pdebench", "info", "plot", "train", "evaluate"]


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


def _tolerant_streams() -> None:
    """Print any text, even a path that is not valid UTF-8 (os.fsdecode's surrogates), on a
    strict UTF-8 (or ASCII) terminal: unencodable characters are written as escapes."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure") and getattr(stream, "errors", "strict") == "strict":
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # pragma: no cover - a stream that cannot be reconfigured
                pass


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    _tolerant_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except TrainingInterrupted as err:          # SIGINT / SIGTERM during training: saved, resumable
        print(f"pymsde: {_one_line(err)}", file=sys.stderr)
        return err.exit_code
    except PymsdeError as err:
        print(f"pymsde: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:                   # Ctrl-C outside the training loop: nothing half-written
        print("pymsde: interrupted (SIGINT)", file=sys.stderr)
        return 130
    except MemoryError:
        print("pymsde: error: out of memory (a size larger than this machine can hold)", file=sys.stderr)
        return 2
    except BrokenPipeError:                     # `pymsde info FILE | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except RuntimeError as err:                 # torch's allocators: "can't allocate memory", CUDA OOM
        if "allocate" not in str(err) and "out of memory" not in str(err).lower():
            raise
        first = (str(err).strip().splitlines() or [""])[0]
        print(f"pymsde: error: out of memory: {first[:300]}", file=sys.stderr)
        return 2
    except OSError as err:   # a path that cannot be written or read (a directory, no permission, disk full)
        code = errno.errorcode.get(err.errno or 0, "")
        print(f"pymsde: error: {_one_line(err)}{f' ({code})' if code else ''}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
