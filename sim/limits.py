"""Memory a run will need, checked before it is allocated.

A size or count that would need more memory than the machine has is refused up front with
what it would need and the limit (:class:`~sim.errors.InputError`, exit status 2), rather than
failing half-way with numpy's ``ArrayMemoryError`` or growing until the machine swaps.
"""

from __future__ import annotations

import os

from sim.errors import InputError

__all__ = ["physical_memory_bytes", "check_memory", "format_bytes"]


def physical_memory_bytes() -> int:
    """The machine's physical memory (``sysconf``), the limit of what a run may allocate."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 1 << 40


def format_bytes(n: int) -> str:
    """``n`` bytes in binary units, one decimal (``"4.0 TiB"``)."""
    for unit, shift in (("EiB", 60), ("PiB", 50), ("TiB", 40), ("GiB", 30), ("MiB", 20)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):,.1f} {unit}"
    return f"{n:,} bytes"


def check_memory(need_bytes: int, what: str, where: str | None = None) -> None:
    """Refuse (InputError) ``what`` when it needs more than the machine's physical memory.

    Parameters
    ----------
    need_bytes : int
        The memory the run would allocate for ``what``.
    what : str
        What needs it, as the message says it (``"10^12 requests (16 bytes each)"``).
    where : str, optional
        The option or key that asked for it.
    """
    limit = physical_memory_bytes()
    if need_bytes > limit:
        raise InputError(
            f"{what} would need {format_bytes(need_bytes)} of memory; the limit is this "
            f"machine's {format_bytes(limit)}",
            where=where,
        )
