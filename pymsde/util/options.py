"""Dataclass fields that document themselves: the one source of a setting's name, default,
help text and command-line flag.

``option(default, "help text", flag="--coarse")`` is a :func:`dataclasses.field` whose
metadata the command line (:mod:`pymsde.cli._options`) and the TOML tables read, so no flag
table, help string or default is written twice.
"""
from __future__ import annotations

import dataclasses
from typing import Any

#: the metadata key of an :func:`option`
KEY = "pymsde_option"


def option(default: Any = dataclasses.MISSING, help: str = "", *, flag: str | None = None,
           type: type | None = None, nargs: str | None = None, choices: tuple | None = None,
           cli: bool = True) -> Any:
    """A dataclass field with its documentation.

    Args:
        default: the default (``dataclasses.MISSING``: required).
        help: one sentence, shown by ``--help`` with the default appended.
        flag: the command-line flag (default ``--`` + the field name with dashes).
        type: element type for the parser (default: the default's type).
        nargs: ``"+"`` for a list of values.
        choices: the allowed values, listed by ``--help``.
        cli: False keeps the field out of the command line (TOML only).
    """
    meta = {KEY: {"help": help, "flag": flag, "type": type, "nargs": nargs, "choices": choices, "cli": cli}}
    if isinstance(default, (list, dict, set)):
        raise TypeError("option(): use a tuple or None for a mutable default")
    return dataclasses.field(default=default, metadata=meta)


def options_of(cls) -> list[tuple[dataclasses.Field, dict]]:
    """The fields of ``cls`` declared with :func:`option`, with their metadata, in order."""
    return [(f, f.metadata[KEY]) for f in dataclasses.fields(cls) if KEY in f.metadata]


__all__ = ["option", "options_of", "KEY"]


def _element_type(f: dataclasses.Field, meta: dict) -> type | None:
    if meta.get("type") is not None:
        return meta["type"]
    d = f.default
    if isinstance(d, tuple):
        return type(d[0]) if d else None
    return None if d is None or d is dataclasses.MISSING else type(d)


def coerce(f: dataclasses.Field, value: Any, where: str) -> Any:
    """Check a value read from a TOML file or the command line against its field.

    Numbers are not strings (``coarse = "8"`` is refused, not read as ``(8,)``), an integer
    field takes no fraction, lists become tuples. Raises ConfigError naming ``where``.
    """
    from pymsde.util.errors import ConfigError

    meta = f.metadata.get(KEY, {})
    elem = _element_type(f, meta)
    listy = meta.get("nargs") == "+" or isinstance(f.default, tuple)
    if value is None:
        return None
    if listy:
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        return tuple(_scalar(x, elem, f"{where}[{i}]") for i, x in enumerate(items))
    out = _scalar(value, elem, where)
    choices = meta.get("choices")
    if choices and out not in choices:
        raise ConfigError(f"{where} = {out!r}; expected one of {', '.join(map(repr, choices))}")
    return out


def _scalar(v: Any, elem: type | None, where: str) -> Any:
    from pymsde.util.errors import ConfigError

    if elem is bool:
        if not isinstance(v, bool):
            raise ConfigError(f"{where} = {v!r}; expected true or false")
        return v
    if elem is int:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v):
            raise ConfigError(f"{where} = {v!r}; expected an integer")
        return int(v)
    if elem is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{where} = {v!r}; expected a number")
        return float(v)
    if elem is str and not isinstance(v, str):
        raise ConfigError(f"{where} = {v!r}; expected a string")
    return v


def from_mapping(cls, d: Any, source: str, table: str, **fixed: Any):
    """``cls(**fixed, **d)`` with every key of ``d`` checked against its field (:func:`coerce`).

    Raises:
        ConfigError: ``d`` is not a table, a key names no field, or a value has the wrong type;
            the message names ``source`` and ``[table] key``.
    """
    from pymsde.util.errors import ConfigError

    if not isinstance(d, dict):
        raise ConfigError(f"{source}: [{table}] is a {type(d).__name__}; expected a table of settings")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(names) - set(fixed))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown} in [{table}]; expected some of "
                          f"{sorted(set(names) - set(fixed))}")
    kwargs = {k: coerce(names[k], v, f"{source}: [{table}] {k}") for k, v in d.items()}
    try:
        return cls(**fixed, **kwargs)
    except TypeError as err:
        raise ConfigError(f"{source}: [{table}]: {err}") from None


__all__ += ["coerce", "from_mapping"]
