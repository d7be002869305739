"""Command-line flags generated from dataclass fields declared with :func:`pymsde.util.options.option`.

The flag, its help text, its default and its choices are the field's, so ``--help`` and the
TOML tables can never disagree with the code.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Iterable

from pymsde.util.options import options_of

_METAVAR = {int: "N", float: "X", str: "NAME"}


def _default_text(f: dataclasses.Field) -> str:
    d = f.default
    if d is dataclasses.MISSING:
        return "required"
    if d is None:
        return "off"
    if isinstance(d, tuple):
        return " ".join(map(str, d)) if d else "automatic"
    return str(d)


def add_options(group, cls, prefix: str, skip: Iterable[str] = (), required: Iterable[str] = ()) -> list[str]:
    """Add one flag per :func:`~pymsde.util.options.option` field of ``cls`` to ``group``.

    Every flag defaults to None (not given), so a TOML file or a checkpoint can supply the
    value; the help shows the field's own default. Returns the field names added (their
    ``dest`` is ``prefix + name``).
    """
    skip, required = set(skip), set(required)
    names = []
    for f, meta in options_of(cls):
        if not meta["cli"] or f.name in skip:
            continue
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        elem = meta["type"] or (type(f.default[0]) if isinstance(f.default, tuple) and f.default
                                else type(f.default) if f.default not in (None, dataclasses.MISSING) else str)
        nargs = meta["nargs"] or ("+" if isinstance(f.default, tuple) else None)
        choices = meta["choices"]
        extra = f"; one of {', '.join(map(str, choices))}" if choices else ""
        default = "required" if f.name in required else _default_text(f)
        group.add_argument(flag, dest=prefix + f.name, type=elem, nargs=nargs, default=None,
                           metavar=_METAVAR.get(elem, "VALUE"),
                           help=f"{meta['help']}{extra} (default: {default})")
        names.append(f.name)
    return names


def given(args, prefix: str, names: Iterable[str]) -> dict[str, Any]:
    """The options the command line set (not None), keyed by field name."""
    return {n: getattr(args, prefix + n) for n in names if getattr(args, prefix + n) is not None}


def plain_text(text: str) -> str:
    """``text`` without its reST markup (````code````, :func:`name` and the like), whitespace
    collapsed: docstring prose as ``--help`` shows it."""
    text = re.sub(r":(?:func|class|mod|meth|data):`~?([^`]*)`", r"\1", text).replace("``", "")
    return " ".join(text.split())


def doc_summary(doc: str | None) -> str:
    """A subcommand's ``--help`` description from its module docstring: the first paragraph
    without its leading usage line (````pymsde info FILE ...````:, which argparse prints anyway),
    as :func:`plain_text`, capitalised."""
    first = re.sub(r"^``[^`]*``:\s*", "", (doc or "").strip().split("\n\n")[0])
    first = plain_text(first)
    return first[:1].upper() + first[1:]


__all__ = ["add_options", "doc_summary", "given", "plain_text"]
