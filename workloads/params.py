"""Typed, documented parameters: one mechanism for generator params and scenario sections.

A parameter set is a frozen dataclass whose fields are declared with :func:`param`. Each
field carries its help text, unit, kind and allowed range in ``field.metadata``; the scenario
loader (``sim.scenario``) and :func:`build_params` use it to check and convert values from
TOML or ``--set``, and ``daxsim show-config`` to print them.

Kinds
-----
``int``, ``float``, ``bool``, ``str``
    Plain values (a TOML integer is accepted for a float; ``true`` is not an int).
``size``
    A byte count: a non-negative integer, or a string with a binary suffix, see
    :func:`parse_size`. Stored as int bytes.
``duration``
    A nanosecond count: a non-negative integer, or a string ``"10ms"``, ``"5us"``,
    ``"1.5s"``, ``"100ns"``. Stored as int nanoseconds.
``choice``
    A string from ``choices``.
``path``
    A file path; relative paths are resolved against the scenario file's folder (the
    current folder for programmatic use) and the file must exist. Stored as str.
``workload``
    A nested workload: a table with ``generator`` and that generator's parameters
    (``memory-failure.base``). Stored as :class:`workloads.registry.WorkloadSpec`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

__all__ = [
    "param",
    "ParamError",
    "parse_size",
    "parse_duration_ns",
    "coerce",
    "describe",
    "format_size",
]


class ParamError(ValueError):
    """A value that does not fit its parameter; the message says what is allowed.

    Parameters
    ----------
    message : str
    key : str, optional
        Dotted key of the offending parameter, when known.
    """

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.message = message
        self.key = key

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message


_BIN = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE_RE = re.compile(r"^\s*(0x[0-9a-fA-F]+|\d+)\s*([kKmMgGtTpP]?)(iB|ib|IB|B|b)?\s*$")
_DUR = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_DUR_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|µs|ms|s)\s*$")


def parse_size(value: Any) -> int:
    """Parse a size in bytes.

    Accepted: a non-negative int; a string of digits (or ``0x`` hex) with an optional
    binary suffix ``k``, ``m``, ``g``, ``t``, ``p`` (powers of 1024), optionally followed by
    ``iB`` (``"64k"``, ``"2M"``, ``"8GiB"``, ``"4096"``, ``"512B"``). Decimal-looking
    suffixes (``"8GB"``, ``"64kB"``) are rejected: ``GB`` means 10^9 to some people and 2^30 to
    others, so the message asks for ``GiB`` or a plain byte count.

    Raises
    ------
    ParamError
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ParamError(
            f'expected a size (int bytes or a string such as "64MiB"), '
            f"got {type(value).__name__} {value!r}"
        )
    if isinstance(value, int):
        if value < 0:
            raise ParamError(f"size must be >= 0, got {value}")
        return value
    m = _SIZE_RE.match(value)
    if not m:
        raise ParamError(
            f"cannot parse size {value!r}; use bytes or a binary suffix: "
            f'"64k", "2M", "8GiB", "1TiB"'
        )
    digits, suffix, tail = m.groups()
    suffix = suffix.lower()
    if tail in ("B", "b") and suffix:
        raise ParamError(
            f"ambiguous decimal-looking suffix in {value!r}: write "
            f'"{digits}{suffix.upper()}iB" (2^{10 * "kmgtp".index(suffix) + 10}'
            f" units) or the exact byte count"
        )
    if tail and tail.lower() == "ib" and not suffix:
        raise ParamError(f"cannot parse size {value!r}: 'iB' needs a prefix (KiB, MiB, GiB...)")
    n = int(digits, 16) if digits.lower().startswith("0x") else int(digits)
    return n * _BIN[suffix]


def format_size(n: int) -> str:
    """The exact binary-suffixed form of a byte count (``"64MiB"``, ``"4097"``)."""
    for suf, mult in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n and n % mult == 0:
            return f"{n // mult}{suf}"
    return str(n)


def parse_duration_ns(value: Any) -> int:
    """Parse a duration in nanoseconds: an int (ns) or ``"10ms"``, ``"5us"``, ``"1.5s"``.

    Raises
    ------
    ParamError
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ParamError(
            f'expected a duration (int ns or a string such as "10ms"), '
            f"got {type(value).__name__} {value!r}"
        )
    if isinstance(value, int):
        if value < 0:
            raise ParamError(f"duration must be >= 0, got {value}")
        return value
    m = _DUR_RE.match(value)
    if not m:
        raise ParamError(
            f'cannot parse duration {value!r}; use ns or a suffix ns, us, ms, s ("10ms", "250us")'
        )
    return int(round(float(m.group(1)) * _DUR[m.group(2)]))


def param(
    default: Any,
    help: str,
    *,
    unit: str = "",
    kind: str | None = None,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[str, ...] | None = None,
    align: int | None = None,
) -> Any:
    """Declare a dataclass field with its documentation and checks.

    Parameters
    ----------
    default : object
        Default value (already in canonical units: int bytes for sizes, int ns for durations).
    help : str
        One-line description.
    unit : str, optional
        Unit shown next to the value (``"bytes"``, ``"ns"``, ``"count"``).
    kind : str, optional
        One of the kinds in the module docstring; inferred from the default when omitted.
    min, max : float, optional
        Inclusive bounds.
    choices : tuple of str, optional
        Allowed strings (kind ``choice``).
    align : int, optional
        The value must be a multiple of this (sizes).
    """
    if kind is None:
        kind = (
            "choice"
            if choices
            else "bool"
            if isinstance(default, bool)
            else "int"
            if isinstance(default, int)
            else "float"
            if isinstance(default, float)
            else "str"
        )
    if kind == "size" and not unit:
        unit = "bytes"
    if kind == "duration" and not unit:
        unit = "ns"
    meta = {
        "help": help,
        "unit": unit,
        "kind": kind,
        "min": min,
        "max": max,
        "choices": choices,
        "align": align,
    }
    return dataclasses.field(default=default, metadata=meta)


def _allowed(meta: dict) -> str:
    kind = meta["kind"]
    parts = {
        "int": "an integer",
        "float": "a number",
        "bool": "true or false",
        "str": "a string",
        "size": 'a size (int bytes or "64k", "2MiB", "8GiB")',
        "duration": 'a duration (int ns or "10ms", "250us")',
        "path": "a path to an existing file (relative to the scenario file)",
        "choice": "one of " + ", ".join(f'"{c}"' for c in meta["choices"] or ()),
        "workload": "a table with 'generator' and its parameters",
    }[kind]
    lo, hi = meta["min"], meta["max"]
    if lo is not None and hi is not None:
        parts += f" in [{lo}, {hi}]"
    elif lo is not None:
        parts += f" >= {lo}"
    elif hi is not None:
        parts += f" <= {hi}"
    if meta["align"]:
        parts += f", a multiple of {meta['align']}"
    return parts


def describe(field: dataclasses.Field) -> str:
    """What a field accepts, in words (used in error messages and show-config)."""
    return _allowed(dict(field.metadata))


def coerce(field: dataclasses.Field, value: Any) -> Any:
    """Check ``value`` against ``field``'s declaration and return it in canonical form.

    ``workload`` fields are returned unchanged (the registry builds them).

    Raises
    ------
    ParamError
        The message names the wrong type or value and what is allowed.
    """
    meta = dict(field.metadata)
    kind = meta["kind"]
    allowed = _allowed(meta)
    if kind == "workload":
        return value
    if kind == "size":
        try:
            v = parse_size(value)
        except ParamError as exc:
            raise ParamError(f"{exc}; allowed: {allowed}") from None
    elif kind == "duration":
        try:
            v = parse_duration_ns(value)
        except ParamError as exc:
            raise ParamError(f"{exc}; allowed: {allowed}") from None
    elif kind == "bool":
        if not isinstance(value, bool):
            raise ParamError(f"wrong type {type(value).__name__} ({value!r}); allowed: {allowed}")
        v = value
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(f"wrong type {type(value).__name__} ({value!r}); allowed: {allowed}")
        v = value
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParamError(f"wrong type {type(value).__name__} ({value!r}); allowed: {allowed}")
        v = float(value)
        if not math.isfinite(v):
            raise ParamError(f"not a finite number ({value!r}); allowed: {allowed}")
    elif kind in ("str", "choice", "path"):
        if not isinstance(value, str):
            raise ParamError(f"wrong type {type(value).__name__} ({value!r}); allowed: {allowed}")
        v = value
        if kind == "choice" and v not in meta["choices"]:
            raise ParamError(f"{value!r} is not allowed; allowed: {allowed}")
    else:  # pragma: no cover - declaration error
        raise TypeError(f"unknown kind {kind!r}")
    if kind in ("int", "float", "size", "duration"):
        if meta["min"] is not None and v < meta["min"]:
            raise ParamError(f"{value!r} is out of range; allowed: {allowed}")
        if meta["max"] is not None and v > meta["max"]:
            raise ParamError(f"{value!r} is out of range; allowed: {allowed}")
        if meta["align"] and v % meta["align"]:
            raise ParamError(f"{value!r} is not a multiple of {meta['align']}; allowed: {allowed}")
    return v
