"""Bounded memory for the fuzz tests: the peak resident set a call adds.

A resource limit on the address space (``RLIMIT_AS``) or on data (``RLIMIT_DATA``, which since
Linux 4.7 counts private writable mappings) would stop the simulator's lazy struct-page arrays,
which reserve address space for every page of the device (``MAP_NORESERVE``) and touch only
the pages in use. What has to stay bounded is the memory a command really uses, its resident
set. Linux keeps the peak (``VmHWM`` in ``/proc/self/status``) and resets it to the current
size on ``echo 5 > /proc/self/clear_refs`` (Documentation/filesystems/proc.rst), so the peak a
call adds is measured in-process, on the commands the fuzz tests run anyway.
"""

from __future__ import annotations

import re
from pathlib import Path

#: The most resident memory one fuzzed command may add (bytes). Valid inputs run the small
#: built-in scenarios; an input that asks for more (a huge device, file or line) must be
#: refused or run lazily, not allocated.
MEMORY_BOUND_BYTES = 1 << 30

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_bytes(field: str) -> int:
    m = re.search(rf"^{field}:\s+(\d+) kB$", _STATUS.read_text(), re.M)
    assert m is not None, f"no {field} in {_STATUS}"
    return int(m.group(1)) * 1024


def peak_rss_added(fn, *args, **kwargs):
    """Call ``fn(*args, **kwargs)``; return its result and the peak resident memory it added.

    Returns
    -------
    tuple
        ``(result, added_bytes)``: the call's result, and the process's peak resident set
        during the call minus its resident set before it.
    """
    _CLEAR_REFS.write_text("5")  # peak := current
    start_bytes = _status_bytes("VmRSS")
    result = fn(*args, **kwargs)
    return result, _status_bytes("VmHWM") - start_bytes
