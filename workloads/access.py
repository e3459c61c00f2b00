"""Access patterns and stream assembly shared by the generators (all vectorised).

* :func:`zipf_ranks` draws bounded Zipf ranks by inverse CDF.
* :func:`first_touch_faults` turns per-instance access sequences into the faults a kernel
  would take: the first access of a (instance, page) faults (read or write), and the first
  write after a read-first faults again (write-protect upgrade; CoW on a shared extent).
* :class:`StreamBuilder` collects row chunks with times in ns and assembles them, stably
  sorted by time, with times converted to cycles.
"""

from __future__ import annotations

import numpy as np

from sim.constants import PMD_NR_PAGES
from workloads.ops import ARG_PMD, OP_DTYPE, PAGE_SIZE, PMD_SIZE, Op, concat, make_ops

__all__ = ["zipf_ranks", "first_touch_faults", "StreamBuilder", "instance_faults"]

PMD_PAGES = PMD_NR_PAGES


def zipf_ranks(rng: np.random.Generator, n_items: int, n_samples: int, s: float) -> np.ndarray:
    """Bounded Zipf ranks: ``P(k) ∝ 1 / (k + 1) ** s`` for ``k`` in ``[0, n_items)``.

    Parameters
    ----------
    rng : numpy.random.Generator
    n_items : int
        Number of distinct items (> 0).
    n_samples : int
    s : float
        Exponent (>= 0; 0 is uniform).

    Returns
    -------
    ndarray of shape (n_samples,), dtype int64
    """
    w = np.arange(1, n_items + 1, dtype=np.float64) ** -float(s)
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    u = rng.random(n_samples)
    return np.minimum(np.searchsorted(cdf, u, side="right"), n_items - 1).astype(np.int64)


def first_touch_faults(
    instance: np.ndarray, unit: np.ndarray, is_write: np.ndarray, n_units: int
) -> tuple[np.ndarray, np.ndarray]:
    """The accesses that fault, for accesses given in per-instance program order.

    Parameters
    ----------
    instance : ndarray of shape (N,), int64
        Instance (process) of each access; accesses of one instance are in program order.
    unit : ndarray of shape (N,), int64
        Fault unit of each access (a page index, or the first page of a PMD region).
    is_write : ndarray of shape (N,), bool
    n_units : int
        Upper bound of ``unit`` (exclusive).

    Returns
    -------
    index : ndarray of shape (F,), int64
        Positions (into the inputs) of the faulting accesses, increasing.
    write : ndarray of shape (F,), bool
        Whether each fault is a write fault.
    """
    key = instance.astype(np.int64) * int(n_units) + unit.astype(np.int64)
    faults = np.zeros(len(key), dtype=bool)
    faults[_first_occurrences(key)] = True
    widx = np.flatnonzero(is_write)
    faults[widx[_first_occurrences(key[widx])]] = True
    idx = np.flatnonzero(faults).astype(np.int64)
    return idx, is_write[idx]


def _first_occurrences(key: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each distinct value (a stable sort, no hash)."""
    if not len(key):
        return np.zeros(0, np.int64)
    order = np.argsort(key, kind="stable")
    ks = key[order]
    start = np.empty(len(ks), dtype=bool)
    start[0] = True
    np.not_equal(ks[1:], ks[:-1], out=start[1:])
    return order[start]


def instance_faults(
    rng: np.random.Generator,
    *,
    n_instances: int,
    image_pages: int,
    accesses: int,
    zipf_s: float,
    write_fraction: float,
    pmd_fraction: float,
) -> dict[str, np.ndarray]:
    """Faults of ``n_instances`` processes each touching a Zipf working set of one image.

    Every instance draws ``accesses`` page accesses from the same hotness order (a random
    permutation of the image pages, as VMs booted from one image touch the same hot pages),
    each a write with probability ``write_fraction``. An instance's mapping is huge-aligned
    with probability ``pmd_fraction``: its faults in 2 MiB regions fully inside the image are
    PMD faults (one per region and kind), the rest PTE faults.

    Returns
    -------
    dict of str to ndarray
        ``huge`` (bool, shape (n_instances,): the instance's mapping is huge-aligned);
        then, one entry per fault, grouped by instance, in program order: ``instance``
        (int64), ``offset_bytes`` (int64), ``length_bytes`` (int64), ``write`` (bool),
        ``pmd`` (bool), ``step`` (int64: position of the access in its instance's sequence).
    """
    hot = rng.permutation(image_pages).astype(np.int64)
    n = n_instances * accesses
    inst = np.repeat(np.arange(n_instances, dtype=np.int64), accesses)
    step = np.tile(np.arange(accesses, dtype=np.int64), n_instances)
    page = hot[zipf_ranks(rng, image_pages, n, zipf_s)]
    is_write = rng.random(n) < write_fraction
    n_regions = image_pages // PMD_PAGES
    huge = (
        rng.random(n_instances) < pmd_fraction
        if pmd_fraction > 0
        else np.zeros(n_instances, dtype=bool)
    )
    pmd = huge[inst] & (page // PMD_PAGES < n_regions)
    unit = np.where(pmd, (page // PMD_PAGES) * PMD_PAGES, page)
    idx, write = first_touch_faults(inst, unit, is_write, image_pages)
    return {
        "huge": huge,
        "instance": inst[idx],
        "offset_bytes": unit[idx] * PAGE_SIZE,
        "length_bytes": np.where(pmd[idx], PMD_SIZE, PAGE_SIZE).astype(np.int64),
        "write": write,
        "pmd": pmd[idx],
        "step": step[idx],
    }


def fault_rows(*, pid, cpu, file, offset_bytes, length_bytes, write, pmd, pattern) -> np.ndarray:
    """READ_FAULT / WRITE_FAULT rows (arrays broadcast); ``pattern`` is the stored byte."""
    write = np.asarray(write, dtype=bool)
    op = np.where(write, int(Op.WRITE_FAULT), int(Op.READ_FAULT)).astype(np.int8)
    arg = np.where(np.asarray(pmd, dtype=bool), ARG_PMD, 0) | np.where(
        write, (np.asarray(pattern, dtype=np.int64) & 0xFF) << 8, 0
    )
    return make_ops(
        op,
        pid=pid,
        cpu=cpu,
        file=file,
        offset_bytes=offset_bytes,
        length_bytes=length_bytes,
        arg=arg,
    )


class StreamBuilder:
    """Collects row chunks with issue times in ns; :meth:`build` sorts and converts.

    Rows are added in causal order per actor with non-decreasing times; :meth:`build` sorts
    stably by time, so equal times keep the order in which they were added.
    """

    def __init__(self) -> None:
        self._rows: list[np.ndarray] = []
        self._t: list[np.ndarray] = []

    def add(self, rows: np.ndarray, t_ns) -> None:
        """Add rows (dtype OP_DTYPE) issued at ``t_ns`` (scalar or array of shape (n,))."""
        self._rows.append(rows)
        self._t.append(np.broadcast_to(np.asarray(t_ns, dtype=np.float64), (len(rows),)))

    def op(self, op: Op, t_ns: float, **fields) -> None:
        """Add one row."""
        self.add(make_ops(op, n=1, **fields), t_ns)

    def build(self, cycles_per_ns: float) -> np.ndarray:
        """The stream, stably sorted by time, with ``t_cycles = round(t_ns * cycles_per_ns)``."""
        rows = concat(self._rows)
        if not len(rows):
            return rows
        t = np.concatenate(self._t)
        order = np.argsort(t, kind="stable")
        rows = rows[order]
        rows["t_cycles"] = np.round(t[order] * float(cycles_per_ns)).astype(np.int64)
        return rows.astype(OP_DTYPE, copy=False)
