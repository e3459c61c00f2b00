"""Statistics of a memmap recomputed by scanning every page: the check of the gauges.

The built-in kernels keep the residue, phantom and share-degree statistics incrementally
(see :mod:`sim.memmap.layout` and :mod:`sim.memmap.kernels`).  The functions here compute the
same figures from the words alone, in one compiled pass over the arrays (no temporaries):
the tests assert that both agree after random operation sequences, and
:class:`~sim.memmap.MemMap` falls back to them where no gauge exists (user designs without a
built-in kernel, or a share degree beyond the histogram's exact bins).  A scan costs one read
of the whole memmap (4.3 GB on a 1 TiB device): an end-of-run statistic, not a per-sample one.
"""

from __future__ import annotations

import numpy as np

from sim.jit import njit
from sim.memmap.layout import FLAG_SENTINEL, PHANTOM_TAG, PMD_NPAGES, PMD_ORDER

__all__ = ["scan_flag", "scan_folio", "scan_phantom_tags"]

_FLAG = np.int64(FLAG_SENTINEL)
_TAG = np.int64(PHANTOM_TAG)


@njit(cache=True)
def _flag_max(st_map, st_idx):
    mx = -1
    for p in range(st_map.shape[0]):
        if st_map[p] == _FLAG and st_idx[p] > mx:
            mx = st_idx[p]
    return mx


@njit(cache=True)
def _flag_fill(st_map, st_idx, hist):
    for p in range(st_map.shape[0]):
        if st_map[p] == _FLAG and st_idx[p] >= 0:
            hist[st_idx[p]] += 1


def scan_flag(mapping, index) -> np.ndarray:
    """Share-degree histogram of a flag design: ``h[d]`` pages carry the sentinel with count
    ``d`` (``h[0]`` is the residue).  Length ``max degree + 1`` (empty if none)."""
    mx = _flag_max(mapping, index)
    hist = np.zeros(mx + 1, np.int64)
    if mx >= 0:
        _flag_fill(mapping, index, hist)
    return hist


@njit(cache=True)
def _folio_max(st_map, st_idx, exclude):
    mx = 0
    for p in range(st_map.shape[0]):
        if st_map[p] == 0 and st_idx[p] > mx:
            if exclude.size and exclude[min(np.searchsorted(exclude, p), exclude.size - 1)] == p:
                continue
            mx = st_idx[p]
    return mx


@njit(cache=True)
def _folio_fill(st_map, st_idx, st_order, exclude, hist):
    for p in range(st_map.shape[0]):
        d = st_idx[p]
        if st_map[p] == 0 and d > 0:
            if exclude.size and exclude[min(np.searchsorted(exclude, p), exclude.size - 1)] == p:
                continue
            big = p % PMD_NPAGES == 0 and st_order[p // PMD_NPAGES] == PMD_ORDER
            hist[d] += PMD_NPAGES if big else 1


def scan_folio(mapping, index, order, exclude=None) -> np.ndarray:
    """Share-degree histogram of a folio design: Shared(d) folios (``mapping == 0``,
    ``index == d != 0``) weighted by their pages (512 for an order-9 head).  Tagged phantoms
    never match; ``exclude`` (sorted pfns) drops the reference's untagged phantoms.  Length
    ``max degree + 1``, or empty if nothing is shared."""
    ex = np.zeros(0, np.int64) if exclude is None else np.asarray(exclude, np.int64)
    mx = _folio_max(mapping, index, ex)
    if mx <= 0:
        return np.zeros(0, np.int64)
    hist = np.zeros(mx + 1, np.int64)
    _folio_fill(mapping, index, order, ex, hist)
    return hist


@njit(cache=True)
def _count_tags(st_map, st_idx):
    n = 0
    for p in range(st_map.shape[0]):
        if st_map[p] == _TAG and st_idx[p] != 0:
            n += 1
    return n


def scan_phantom_tags(mapping, index) -> int:
    """Pages with the folio kernels' phantom tag and a non-zero (stale) share word."""
    return int(_count_tags(mapping, index))
