"""Set-associative LRU cache hierarchy (per-CPU L1 and L2, shared L3) as a numba kernel.

The kernel walks a stream of 64 B line accesses in order and returns, for each, the
cycles it cost: the hit latency of the first level holding the line, or the memory latency
of the medium holding it on a miss. A miss on pmem goes through a small model of the DIMM
side: a hit in the XPBuffer (the same 256 B XPLine fetched recently, direct-mapped over
``rmw.buffer_lines``) costs the sequential-load latency, a hit in the AIT buffer (the same
4 KiB block, direct-mapped over ``ait.buffer_entries``) the random latency less the AIT miss,
otherwise the full random latency (305 ns on optane-gen1). Dirty lines are tracked in the L3;
evicting a dirty line charges its write-back (on pmem a 64 B partial XPLine write, i.e. a
read-modify-write) as the device occupancy it consumes.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["CacheState", "access_lines"]


class CacheState:
    """Tag, LRU and dirty arrays of an L1/L2 per CPU and a shared L3.

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
            arrays.append(np.zeros((n, sets * ways), dtype=np.int64))
        self.l1_tag, self.l1_lru, self.l2_tag, self.l2_lru, self.l3_tag, self.l3_lru = arrays
        self.l3_dirty = np.zeros_like(self.l3_tag)
        self.xpb = np.full(max(1, int(v["rmw.buffer_lines"])), -1, dtype=np.int64)
        self.ait = np.full(max(1, int(v["ait.buffer_entries"])), -1, dtype=np.int64)
        self.clock = np.zeros(1, dtype=np.int64)


@numba.njit(cache=True)
def _lookup(tag, lru, row, sets, ways, line, clock):
    base = (line % sets) * ways
    victim = base
    for w in range(base, base + ways):
        if tag[row, w] == line:
            lru[row, w] = clock
            return w, True
        if lru[row, w] < lru[row, victim]:
            victim = w
    return victim, False


@numba.njit(cache=True)
def _kernel(addr, write, medium, cpu, lat, geom, l1t, l1l, l2t, l2l, l3t, l3l, l3d, xpb,
            ait, clock, line_bytes, block_bytes, out):
    """lat: [l1, l2, l3, dram_miss, pmem_rand, pmem_xpb_hit, pmem_ait_hit, wb_dram, wb_pmem]."""
    c = clock[0]
    for i in range(addr.shape[0]):
        c += 1
        line = addr[i] >> 6
        k = cpu[i]
        w1, h1 = _lookup(l1t, l1l, k, geom[0], geom[1], line, c)
        if h1:
            cost = lat[0]
        else:
            w2, h2 = _lookup(l2t, l2l, k, geom[2], geom[3], line, c)
            if h2:
                cost = lat[1]
            else:
                w3, h3 = _lookup(l3t, l3l, 0, geom[4], geom[5], line, c)
                if h3:
                    cost = lat[2]
                else:
                    cost = lat[2]
                    # evict the L3 victim; write it back if dirty
                    if l3t[0, w3] >= 0 and l3d[0, w3] != 0:
                        cost += lat[7] if l3d[0, w3] == 1 else lat[8]
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
                    l3t[0, w3] = line
                    l3l[0, w3] = c
                    l3d[0, w3] = 0
                l2t[k, w2] = line
                l2l[k, w2] = c
            l1t[k, w1] = line
            l1l[k, w1] = c
        if write[i] != 0:
            # the line is dirty in the hierarchy; remember where it must be written back
            base = (line % geom[4]) * geom[5]
            for w in range(base, base + geom[5]):
                if l3t[0, w] == line:
                    l3d[0, w] = 1 + medium[i]
                    break
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
    """
    out = np.empty(addr.shape[0], dtype=np.int64)
    _kernel(addr, write, medium, cpu, lat, state.geom, state.l1_tag, state.l1_lru,
            state.l2_tag, state.l2_lru, state.l3_tag, state.l3_lru, state.l3_dirty,
            state.xpb, state.ait, state.clock, np.int64(line_bytes), np.int64(block_bytes), out)
    return out
