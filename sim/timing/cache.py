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

from sim.prefetch import prefetch_read

__all__ = ["CacheState", "access_lines", "access_records", "geometry"]


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


#: Accesses ahead whose L3 set is prefetched (the L3 tag array is megabytes: a host cache
#: miss per cold access otherwise dominates the kernel; prefetching hides it, ~2.8x faster).
PREFETCH_AHEAD = 8


_prefetch = prefetch_read


@numba.njit(cache=True, inline="always")
def _touch(arr, row, base, ways, line):
    """Look ``line`` up in the set starting at ``base``; on a hit move it to the front (MRU)
    and return (True, its word), on a miss return (False, the LRU victim's word) without
    changing the set."""
    for w in range(base, base + ways):
        v = arr[row, w]
        if v >= 0 and (v >> 2) == line:
            for j in range(w, base, -1):
                arr[row, j] = arr[row, j - 1]
            arr[row, base] = v
            return True, v
    return False, arr[row, base + ways - 1]


@numba.njit(cache=True, inline="always")
def _insert(arr, row, base, ways, word):
    """Drop the LRU way of the set starting at ``base`` and put ``word`` in front."""
    for j in range(base + ways - 1, base, -1):
        arr[row, j] = arr[row, j - 1]
    arr[row, base] = word


@numba.njit(cache=True, inline="always")
def _mod(x, n, mask):
    """``x % n`` for ``x >= 0``; ``mask`` is ``n - 1`` when ``n`` is a power of two, else -1
    (a hardware division costs 20-40 cycles; the mask one)."""
    return x & mask if mask >= 0 else x % n


@numba.njit(cache=True, inline="always")
def _div(x, d, shift):
    """``x // d`` for ``x >= 0``; ``shift`` is log2(d) when ``d`` is a power of two, else -1."""
    return x >> shift if shift >= 0 else x // d


@numba.njit(cache=True, inline="always")
def _access(a, wr, med, k, lat, geom, l1, l2, l3, xpb, ait, line_bytes, block_bytes):
    """Cycles of one 64 B access to byte address ``a`` (``wr`` 1 for a store, ``med`` 0
    DRAM / 1 pmem, ``k`` the CPU), updating the caches.

    lat: [l1, l2, l3, dram_miss, pmem_rand, pmem_xpb_hit, pmem_ait_hit, wb_dram, wb_pmem].
    ``geom``: sets and ways of L1, L2, L3, then the power-of-two masks of the three set
    counts and of the XPBuffer and AIT sizes and the shifts of ``line_bytes`` and
    ``block_bytes`` (-1 where not a power of two; see :func:`geometry`).

    Dirty state is kept in the L3 (dirty = 1 + medium); the L1 remembers that its line is
    already marked so repeated stores to a hot line cost one L1 lookup. A dirty line leaving
    the L3 is written back and its device time charged to the access that evicted it.
    """
    s1, w1n, s2, w2n, s3, w3n = geom[0], geom[1], geom[2], geom[3], geom[4], geom[5]
    line = a >> 6
    b1 = _mod(line, s1, geom[6]) * w1n
    b3 = -1  # base of the line's L3 set, computed when needed
    in3 = False  # the line is at the front of its L3 set (looked up this access)
    h1, v1 = _touch(l1, k, b1, w1n, line)
    if h1:
        cost = lat[0]
    else:
        b2 = _mod(line, s2, geom[7]) * w2n
        h2, _v2 = _touch(l2, k, b2, w2n, line)
        if h2:
            cost = lat[1]
        else:
            b3 = _mod(line, s3, geom[8]) * w3n
            h3, v3 = _touch(l3, 0, b3, w3n, line)
            cost = lat[2]
            if not h3:
                d = v3 & 3
                if v3 >= 0 and d != 0:
                    cost += lat[7] if d == 1 else lat[8]
                if med == 0:
                    cost += lat[3]
                else:
                    xl = _div(a, line_bytes, geom[11])
                    bl = _div(a, block_bytes, geom[12])
                    xs = _mod(xl, xpb.shape[0], geom[9])
                    bs = _mod(bl, ait.shape[0], geom[10])
                    if xpb[xs] == xl:
                        cost += lat[5]
                    elif ait[bs] == bl:
                        cost += lat[6]
                    else:
                        cost += lat[4]
                    xpb[xs] = xl
                    ait[bs] = bl
                _insert(l3, 0, b3, w3n, line << 2)
            in3 = True
            _insert(l2, k, b2, w2n, line << 2)
        v1 = line << 2
        _insert(l1, k, b1, w1n, v1)
    if wr != 0 and (v1 & 3) == 0:
        if b3 < 0:
            b3 = _mod(line, s3, geom[8]) * w3n
        if not in3:
            in3, _v3 = _touch(l3, 0, b3, w3n, line)
        if in3:
            l3[0, b3] = (line << 2) | (1 + med)
        l1[k, b1] = (line << 2) | 1
    return cost


@numba.njit(cache=True, inline="always")
def _prefetch_set(l3flat, a, geom):
    """Prefetch the L3 set of byte address ``a`` (a hint: no result depends on it)."""
    pb = _mod(a >> 6, geom[4], geom[8]) * geom[5]
    _prefetch(l3flat, pb)
    _prefetch(l3flat, pb + geom[5] - 1)


@numba.njit(cache=True)
def _kernel(
    addr, write, medium, cpu, lat, geom, l1, l2, l3, xpb, ait, clock, line_bytes, block_bytes, out
):
    """``out[i]``: cycles of access ``i`` (see :func:`_access`)."""
    n = addr.shape[0]
    l3flat = l3.reshape(-1)
    for i in range(n):
        if i + PREFETCH_AHEAD < n:
            _prefetch_set(l3flat, addr[i + PREFETCH_AHEAD], geom)
        out[i] = _access(
            addr[i],
            write[i],
            medium[i],
            cpu[i],
            lat,
            geom,
            l1,
            l2,
            l3,
            xpb,
            ait,
            line_bytes,
            block_bytes,
        )
    clock[0] += n


@numba.njit(cache=True)
def _kernel_records(
    rec,
    struct,
    key,
    write,
    cpu_rec,
    base,
    sp_struct,
    xa_struct,
    sp_medium,
    lat,
    geom,
    l1,
    l2,
    l3,
    xpb,
    ait,
    clock,
    line_bytes,
    block_bytes,
    xa_out,
    other_out,
    sp_out,
):
    """Per record: cycles of its ``xa_struct`` lines into ``xa_out``, of every other line
    into ``other_out``, and of its ``sp_struct`` lines alone (part of ``other_out``) into
    ``sp_out``."""
    n = key.shape[0]
    l3flat = l3.reshape(-1)
    for i in range(n):
        j = i + PREFETCH_AHEAD
        if j < n:
            _prefetch_set(l3flat, base[struct[j]] + key[j] * 64, geom)
        s = struct[i]
        w = write[i]
        r = rec[i]
        is_sp = s == sp_struct
        cost = _access(
            base[s] + key[i] * 64,
            w,
            sp_medium if is_sp else 0,
            cpu_rec[r],
            lat,
            geom,
            l1,
            l2,
            l3,
            xpb,
            ait,
            line_bytes,
            block_bytes,
        )
        if s == xa_struct:
            xa_out[r] += cost
        elif is_sp:
            other_out[r] += cost
            sp_out[r] += cost
        else:
            other_out[r] += cost
    clock[0] += n


def _mask(n: int) -> int:
    return n - 1 if n > 0 and n & (n - 1) == 0 else -1


def _shift(n: int) -> int:
    return n.bit_length() - 1 if n > 0 and n & (n - 1) == 0 else -1


def geometry(state: CacheState, line_bytes: int, block_bytes: int) -> np.ndarray:
    """The kernel's ``geom`` vector: sets and ways per level, then the power-of-two masks of
    the set counts and buffer sizes and the shifts of the XPLine and AIT block sizes (-1 where
    a size is not a power of two, which takes the division path)."""
    g = state.geom
    return np.array(
        [
            g[0],
            g[1],
            g[2],
            g[3],
            g[4],
            g[5],
            _mask(int(g[0])),
            _mask(int(g[2])),
            _mask(int(g[4])),
            _mask(state.xpb.shape[0]),
            _mask(state.ait.shape[0]),
            _shift(int(line_bytes)),
            _shift(int(block_bytes)),
        ],
        dtype=np.int64,
    )


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
        geometry(state, line_bytes, block_bytes),
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


def access_records(
    state: CacheState,
    nrec: int,
    rec,
    struct,
    key,
    write,
    cpu_rec,
    base,
    sp_struct: int,
    xa_struct: int,
    sp_medium: int,
    lat,
    line_bytes,
    block_bytes,
):
    """Cycles of line accesses summed per record, in one compiled pass (no per-line arrays).

    Access ``i`` is to byte address ``base[struct[i]] + 64 * key[i]`` by CPU
    ``cpu_rec[rec[i]]``; lines of structure ``sp_struct`` live on medium ``sp_medium`` (0
    DRAM, 1 pmem), every other structure in DRAM. Equal to :func:`access_lines` over the
    same accesses, summed per record.

    Returns
    -------
    xa, other, sp : ndarray of shape (nrec,)
        int64 cycles of the ``xa_struct`` lines, of every other line, and of the
        ``sp_struct`` lines alone (included in ``other``), per record.
    """
    xa = np.zeros(nrec, dtype=np.int64)
    other = np.zeros(nrec, dtype=np.int64)
    sp = np.zeros(nrec, dtype=np.int64)
    _kernel_records(
        rec,
        struct,
        key,
        write,
        np.ascontiguousarray(cpu_rec, dtype=np.int64),
        base,
        np.int64(sp_struct),
        np.int64(xa_struct),
        np.int64(sp_medium),
        lat,
        geometry(state, line_bytes, block_bytes),
        state.l1,
        state.l2,
        state.l3,
        state.xpb,
        state.ait,
        state.clock,
        np.int64(line_bytes),
        np.int64(block_bytes),
        xa,
        other,
        sp,
    )
    return xa, other, sp
