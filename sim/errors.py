"""Errors that the command line turns into a clear message and exit status 2."""

from __future__ import annotations

import itertools
import os

__all__ = ["InputError", "quote", "read_text_input", "MAX_LINE_BYTES", "MAX_QUOTE_CHARS"]

#: The longest line an input reader holds (scenario, sweep file, xfs_io script): 1 MiB.
MAX_LINE_BYTES = 1 << 20
#: The most characters of the offending input an error message quotes.
MAX_QUOTE_CHARS = 200


class InputError(Exception):
    """Malformed user input: a scenario, trace, script or option.

    The command line prints ``daxsim: error: <where>: <message>`` and exits with status 2,
    without a traceback and without writing any result file.

    Parameters
    ----------
    message : str
        What is wrong and what was expected.
    where : str, optional
        The file, ``FILE:LINE`` or key the problem is in.
    """

    def __init__(self, message: str, where: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        msg = _clip(self.message, 4 * MAX_QUOTE_CHARS)
        return f"{_clip(self.where, MAX_QUOTE_CHARS)}: {msg}" if self.where else msg


def _clip(text: str, limit: int) -> str:
    """``text``, its middle cut out past ``limit`` characters (a message quoting huge input)."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    return f"{text[:head]} ... [{len(text) - limit:,} characters cut] ... {text[-(limit - head) :]}"


def quote(text: object, limit: int = MAX_QUOTE_CHARS) -> str:
    """``repr(text)``, cut to about ``limit`` characters (with how long the whole was)."""
    s = str(text)
    if len(s) <= limit:
        return repr(s)
    return f"{s[:limit]!r}... ({len(s):,} characters)"


def read_text_input(path: str | os.PathLike, what: str) -> str:
    """The text of an input file (``what``: "scenario", "script", ...), checked as it is read.

    Raises InputError naming ``FILE[:LINE]`` when the file cannot be read, a line is longer
    than :data:`MAX_LINE_BYTES` (it is not held whole), or the bytes are not UTF-8.
    """
    where = str(path)
    lines: list[str] = []
    try:
        with open(path, "rb") as fh:
            for number in itertools.count(1):
                raw = fh.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    break
                if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                    raise InputError(
                        f"line longer than {MAX_LINE_BYTES:,} bytes; expected a {what} line",
                        where=f"{where}:{number}",
                    )
                try:
                    lines.append(raw.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise InputError(
                        f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                        f"a {what} is UTF-8 text",
                        where=f"{where}:{number}",
                    ) from None
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or exc}", where=where) from None
    return "".join(lines)
