"""Set-associative LRU cache hierarchy (per-CPU L1 and L2, shared L3) as a numba kernel.

The kernel walks a stream of 64 B line accesses in order and returns, for each, the
cycles it cost: the hit latency of the first level holding the line, or the memory latency
of the medium holding it on a miss. A miss on pmem goes through a small model of the DIMM
side: a hit in the XPBuffer (the same 256 B XPLine fetched recently, direct-mapped over
``rmw.buffer_lines``) costs the sequential-load latency, a hit in the AIT buffer (the same
4 KiB block, direct-mapped over ``ait.buffer_entries``) the random latency less the AIT miss,
otherwise the full random latency (305 ns on optane-gen1). Dirty lines are tracked in the
L3; a dirty line leaving the L3 charges its write-back (on pmem a 64 B partial XPLine write,
i.e. a read-modify-write) as the device occupancy it consumes.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["CacheState", "access_lines"]


class CacheState:
    """Tag arrays of an L1 and L2 per CPU and a shared L3, each set kept in recency order.

    Each level is one int64 array of shape (rows, sets * ways); set ``s`` occupies
    ``[s ways, (s + 1) ways)``, most recently used way first, so the LRU victim is always
    the last way and a lookup reads one contiguous run of ``ways`` words. A way holds
    ``(line << 2) | dirty`` (``-1`` when empty): in the L3 ``dirty`` is 0 (clean), 1 (dirty,
    DRAM) or 2 (dirty, pmem); in the L1 it is 1 when the line's store has already been
    recorded in the L3. This is exactly LRU with per-access stamps (stamps are unique, so
    the order of a set is a total order), in a third of the memory.

    Parameters
    ----------
    profile : Profile
        Gives ``cache.l{1,2,3}_{bytes,ways}`` and the XPBuffer/AIT sizes.
    cpus : int
        Number of CPUs (private L1 and L2 each).
    """

    def __init__(self, profile, cpus: int = 1):
        v = profile.values
        self.cpus = int(cpus)
        self.geom = np.zeros(6, dtype=np.int64)
        arrays = []
        for i, lvl in enumerate(("l1", "l2", "l3")):
            ways = int(v[f"cache.{lvl}_ways"])
            sets = max(1, int(v[f"cache.{lvl}_bytes"]) // (64 * ways))
            self.geom[2 * i] = sets
            self.geom[2 * i + 1] = ways
            n = self.cpus if lvl != "l3" else 1
            arrays.append(np.full((n, sets * ways), -1, dtype=np.int64))
        self.l1, self.l2, self.l3 = arrays
        self.xpb = np.full(max(1, int(v["rmw.buffer_lines"])), -1, dtype=np.int64)
        self.ait = np.full(max(1, int(v["ait.buffer_entries"])), -1, dtype=np.int64)
        self.clock = np.zeros(1, dtype=np.int64)


@numba.njit(cache=True, inline="always")
def _touch(arr, row, sets, ways, line):
    """Look ``line`` up; on a hit move it to the front (MRU) and return (True, its word),
    on a miss return (False, the LRU victim's word) without changing the set."""
    base = (line % sets) * ways
    for w in range(base, base + ways):
        v = arr[row, w]
        if v >= 0 and (v >> 2) == line:
            for j in range(w, base, -1):
                arr[row, j] = arr[row, j - 1]
            arr[row, base] = v
            return True, v
    return False, arr[row, base + ways - 1]


@numba.njit(cache=True, inline="always")
def _insert(arr, row, sets, ways, word, line):
    """Drop the LRU way of ``line``'s set and put ``word`` in front."""
    base = (line % sets) * ways
    for j in range(base + ways - 1, base, -1):
        arr[row, j] = arr[row, j - 1]
    arr[row, base] = word


@numba.njit(cache=True)
def _kernel(
    addr, write, medium, cpu, lat, geom, l1, l2, l3, xpb, ait, clock, line_bytes, block_bytes, out
):
    """lat: [l1, l2, l3, dram_miss, pmem_rand, pmem_xpb_hit, pmem_ait_hit, wb_dram, wb_pmem].

    Dirty state is kept in the L3 (dirty = 1 + medium); the L1 remembers that its line is
    already marked so repeated stores to a hot line cost one L1 lookup. A dirty line leaving
    the L3 is written back and its device time charged to the access that evicted it.
    """
    s1, w1n, s2, w2n, s3, w3n = geom[0], geom[1], geom[2], geom[3], geom[4], geom[5]
    n = addr.shape[0]
    for i in range(n):
        line = addr[i] >> 6
        k = cpu[i]
        in3 = False  # the line is at the front of its L3 set (looked up this access)
        h1, v1 = _touch(l1, k, s1, w1n, line)
        if h1:
            cost = lat[0]
        else:
            h2, _v2 = _touch(l2, k, s2, w2n, line)
            if h2:
                cost = lat[1]
            else:
                h3, v3 = _touch(l3, 0, s3, w3n, line)
                cost = lat[2]
                if not h3:
                    d = v3 & 3
                    if v3 >= 0 and d != 0:
                        cost += lat[7] if d == 1 else lat[8]
                    if medium[i] == 0:
                        cost += lat[3]
                    else:
                        xl = addr[i] // line_bytes
                        bl = addr[i] // block_bytes
                        xs = xl % xpb.shape[0]
                        bs = bl % ait.shape[0]
                        if xpb[xs] == xl:
                            cost += lat[5]
                        elif ait[bs] == bl:
                            cost += lat[6]
                        else:
                            cost += lat[4]
                        xpb[xs] = xl
                        ait[bs] = bl
                    _insert(l3, 0, s3, w3n, line << 2, line)
                in3 = True
                _insert(l2, k, s2, w2n, line << 2, line)
            v1 = line << 2
            _insert(l1, k, s1, w1n, v1, line)
        if write[i] != 0 and (v1 & 3) == 0:
            if not in3:
                in3, _v3 = _touch(l3, 0, s3, w3n, line)
            if in3:
                b3 = (line % s3) * w3n
                l3[0, b3] = (line << 2) | (1 + medium[i])
            l1[k, (line % s1) * w1n] = (line << 2) | 1
        out[i] = cost
    clock[0] += n


def access_lines(state: CacheState, addr, write, medium, cpu, lat, line_bytes, block_bytes):
    """Cycles of each line access, updating ``state``.

    Parameters
    ----------
    state : CacheState
    addr, write, medium, cpu : ndarray of shape (N,)
        int64 byte address, 1 for a store, 0 DRAM / 1 pmem, CPU index.
    lat : ndarray of shape (9,)
        Cycles: L1, L2, L3 hits, DRAM miss, pmem random miss, pmem XPBuffer hit, pmem AIT
        hit, dirty write-back to DRAM, dirty write-back to pmem.
    line_bytes, block_bytes : int
        XPLine and AIT block sizes of the device.

    Returns
    -------
    ndarray of shape (N,)
        int64 cycles per access.
    """
    out = np.empty(addr.shape[0], dtype=np.int64)
    _kernel(
        addr,
        write,
        medium,
        cpu,
        lat,
        state.geom,
        state.l1,
        state.l2,
        state.l3,
        state.xpb,
        state.ait,
        state.clock,
        np.int64(line_bytes),
        np.int64(block_bytes),
        out,
    )
    return out
