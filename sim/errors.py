"""Errors that the command line turns into a clear message and exit status 2."""

from __future__ import annotations

__all__ = ["InputError"]


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
        return f"{self.where}: {self.message}" if self.where else self.message
