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
    """Tag/LRU(/dirty) arrays of an L1 and L2 per CPU and a shared L3.

    Each level is one int64 array of shape (rows, sets * ways * 3); set ``s`` occupies
    ``[3 s ways, 3 (s + 1) ways)`` as ``ways`` tags, then ``ways`` LRU stamps, then ``ways``
    dirty marks, so a lookup reads the tags of one set contiguously.

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
            a = np.zeros((n, sets, 3, ways), dtype=np.int64)
            a[:, :, 0, :] = -1
            a = a.reshape(n, sets * ways * 3)
            arrays.append(a)
        self.l1, self.l2, self.l3 = arrays
        self.xpb = np.full(max(1, int(v["rmw.buffer_lines"])), -1, dtype=np.int64)
        self.ait = np.full(max(1, int(v["ait.buffer_entries"])), -1, dtype=np.int64)
        self.clock = np.zeros(1, dtype=np.int64)


@numba.njit(cache=True, inline="always")
def _lookup(arr, row, sets, ways, line, clock):
    """Return (slot, hit): ``slot`` indexes the tag of the hit or of the LRU victim way;
    its LRU stamp is at ``slot + ways`` and its dirty mark at ``slot + 2 ways``."""
    base = (line % sets) * ways * 3
    for w in range(base, base + ways):
        if arr[row, w] == line:
            arr[row, w + ways] = clock
            return w, True
    victim = base
    for w in range(base + 1, base + ways):
        if arr[row, w + ways] < arr[row, victim + ways]:
            victim = w
    return victim, False


@numba.njit(cache=True)
def _kernel(
    addr, write, medium, cpu, lat, geom, l1, l2, l3, xpb, ait, clock, line_bytes, block_bytes, out
):
    """lat: [l1, l2, l3, dram_miss, pmem_rand, pmem_xpb_hit, pmem_ait_hit, wb_dram, wb_pmem].

    Dirty state is kept in the L3 (dirty = 1 + medium); the L1 remembers that its line is
    already marked so repeated stores to a hot line cost one L1 lookup. A dirty line leaving
    the L3 is written back and its device time charged to the access that evicted it.
    """
    c = clock[0]
    for i in range(addr.shape[0]):
        c += 1
        line = addr[i] >> 6
        k = cpu[i]
        w3 = -1
        w1, h1 = _lookup(l1, k, geom[0], geom[1], line, c)
        if h1:
            cost = lat[0]
        else:
            w2, h2 = _lookup(l2, k, geom[2], geom[3], line, c)
            if h2:
                cost = lat[1]
            else:
                w3, h3 = _lookup(l3, 0, geom[4], geom[5], line, c)
                cost = lat[2]
                if not h3:
                    d = l3[0, w3 + 2 * geom[5]]
                    if l3[0, w3] >= 0 and d != 0:
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
                    l3[0, w3] = line
                    l3[0, w3 + geom[5]] = c
                    l3[0, w3 + 2 * geom[5]] = 0
                l2[k, w2] = line
                l2[k, w2 + geom[3]] = c
            l1[k, w1] = line
            l1[k, w1 + geom[1]] = c
            l1[k, w1 + 2 * geom[1]] = 0
        if write[i] != 0 and l1[k, w1 + 2 * geom[1]] == 0:
            if w3 < 0:
                w3, h3 = _lookup(l3, 0, geom[4], geom[5], line, c)
                if not h3:
                    w3 = -1
            if w3 >= 0:
                l3[0, w3 + 2 * geom[5]] = 1 + medium[i]
            l1[k, w1 + 2 * geom[1]] = 1
        out[i] = cost
    clock[0] = c


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
