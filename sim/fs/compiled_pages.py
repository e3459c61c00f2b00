"""Page contents as *descriptors*: a page is uniform (every byte one value) or holds bytes.

The compiled engine keeps the bytes of the device's blocks (:mod:`sim.fs.compiled`) and of
the content model's files (:mod:`sim.fs.compiled_content`) as rows of 4096 bytes with one
descriptor per row: ``u[p] >= 0`` means every byte of row ``p`` is ``u[p]`` (the row's bytes
are then stale and never read); ``u[p] == -1`` means the bytes are ``data[p]``. The hunt
writes, zeroes, clones and compares whole pages of one byte far more often than anything
else, and those cost one word here instead of 4096 bytes; a partial write to a uniform page
first materialises it. A uniform page is never left marked -1 by a full-page operation, but
a mixed page whose bytes happen to be equal may stay -1: every reader goes by the bytes then,
so the descriptors only ever speed things up.
"""

from __future__ import annotations

import numpy as np

from sim.constants import PAGE_SIZE
from sim.jit import njit

__all__ = ["PAGE", "pg_fill", "pg_copy", "pg_get", "pg_read", "pg_equal"]

PAGE = PAGE_SIZE


@njit(cache=True, inline="always")
def _materialise(u, data, p):
    v = u[p]
    if v >= 0:
        data[p, :] = np.uint8(v)
        u[p] = -1


@njit(cache=True)
def pg_fill(u, data, p, a, e, v):
    """Bytes ``[a, e)`` of row ``p`` := ``v`` (0 <= a <= e <= PAGE)."""
    if e <= a:
        return
    v &= 0xFF
    if a == 0 and e == PAGE:
        u[p] = v
        return
    if u[p] == v:
        return
    _materialise(u, data, p)
    data[p, a:e] = np.uint8(v)


@njit(cache=True)
def pg_copy(ud, dd, pd, us, ds, ps):
    """Row ``pd`` of (``ud``, ``dd``) := row ``ps`` of (``us``, ``ds``) (any arrays)."""
    v = us[ps]
    ud[pd] = v
    if v < 0:
        dd[pd, :] = ds[ps, :]


@njit(cache=True)
def pg_copy_part(ud, dd, pd, a, us, ds, ps, b, n):
    """Bytes ``[a, a + n)`` of row ``pd`` := bytes ``[b, b + n)`` of row ``ps`` (distinct
    rows or arrays; n <= PAGE)."""
    if n <= 0:
        return
    if a == 0 and b == 0 and n == PAGE:
        pg_copy(ud, dd, pd, us, ds, ps)
        return
    v = us[ps]
    if v >= 0:
        pg_fill(ud, dd, pd, a, a + n, v)
        return
    _materialise(ud, dd, pd)
    dd[pd, a : a + n] = ds[ps, b : b + n]


@njit(cache=True)
def pg_get(u, data, p, j):
    """Byte ``j`` of row ``p``."""
    v = u[p]
    if v >= 0:
        return v
    return np.int64(data[p, j])


@njit(cache=True)
def pg_read(u, data, p, a, e, out, o):
    """Bytes ``[a, e)`` of row ``p`` into ``out[o:]``."""
    v = u[p]
    if v >= 0:
        out[o : o + e - a] = np.uint8(v)
    else:
        out[o : o + e - a] = data[p, a:e]


@njit(cache=True)
def pg_equal(ua, da, pa, ub, db, pb, a, e):
    """Whether bytes ``[a, e)`` of row ``pa`` of (``ua``, ``da``) equal those of row ``pb``
    of (``ub``, ``db``); ``pa`` or ``pb`` -1 reads as zeros."""
    va = ua[pa] if pa >= 0 else 0
    vb = ub[pb] if pb >= 0 else 0
    if va >= 0 and vb >= 0:
        return va == vb
    if va >= 0:
        for j in range(a, e):
            if db[pb, j] != va:
                return False
        return True
    if vb >= 0:
        for j in range(a, e):
            if da[pa, j] != vb:
                return False
        return True
    for j in range(a, e):
        if da[pa, j] != db[pb, j]:
            return False
    return True
