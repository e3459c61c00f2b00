"""The pmem device model: iMC queues, XPBuffer, AIT, 3D-XPoint media, wear levelling.

Structure (``shared/docs/pmem-timing.md`` sections 1.6 and 3, VANS):

``core -> iMC RPQ/WPQ (per channel) -> channel (read/write turnaround) -> XPBuffer (RMW /
write-combining, 256 B lines, LRU) -> AIT buffer (4 KiB blocks, set-associative LRU) ->
media (separate read and write ports with latency and occupancy) ; wear levelling``

* Addresses are interleaved across ``dimm.count`` DIMMs every ``dimm.interleave_bytes``;
  each DIMM has its own queues, buffer, AIT and media ports.
* Reads: an XPBuffer hit costs ``cpu.uncore_read_ns + rmw.read_ns``; a miss first reads the
  whole XPLine from the media (``ait.hit_ns``/``ait.miss_ns`` + ``media.t_read_ns``; the
  read port is busy ``media.read_occupancy_ns`` per line). A miss that continues a
  sequential stream (line ``X-1`` present) prefetches ``rmw.prefetch_lines`` lines ahead.
* Writes complete (are durable, ADR) when the iMC WPQ accepts them; the WPQ slot is held
  until the DIMM accepts the write into the XPBuffer. A line whose four 64 B parts are all
  written is written back whole (write combining); a partially written line that must be
  evicted is read, merged and written (read-modify-write). Write-backs go through a media
  write queue of ``rmw.writeback_entries``; when it is full the DIMM stops accepting
  writes, which fills the WPQ and stalls the threads. A line being written back stays busy
  in the XPBuffer until its media write completes (``rmw.pin_writeback``, VANS: only idle
  entries are evictable), so under a write backlog few entries are left for the lines
  still being combined. Every ``media.wear_threshold``
  media writes to one AIT block stall the DIMM for ``media.migration_ns``.
* A thread keeps at most ``window`` 64 B requests outstanding and its outstanding
  requests reach the DIMM in any order (write-combining buffer eviction, iMC scheduling):
  modelled as a seeded random permutation of each window of consecutive requests. With
  many threads the open (partially written) lines of all threads exceed the XPBuffer
  entries that are not busy writing back, lines are evicted before they are complete, and
  write bandwidth collapses gradually; with many read streams the prefetched lines are
  evicted before use. Nothing is fitted per thread count.
* Reads served to the CPU take ``media.read_write_interference_ns`` of write-port time
  each (the DIMM controller serves one at a time): this is why store+clwb (a read for
  ownership per line) peaks at ~1.75 GB/s while ntstore reaches 2.2 GB/s.
* DRAM and CXL media have no XPBuffer and no AIT: 64 B granularity, an open-row state per
  bank, a channel occupancy per 64 B and (CXL) a fixed link latency.

The request loop is one numba ``njit`` kernel over an event heap: no Python per request.
Time is integer CPU cycles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from sim.errors import InputError
from sim.timing.profiles import Profile

__all__ = ["OPS", "PATTERNS", "MediaResult", "simulate"]

OPS = ("load", "ntstore", "clwb")
PATTERNS = ("seq", "rand")

# Indices into the int64 parameter vector handed to the kernel.
(
    _KIND,
    _NDIMM,
    _IL,
    _LINE,
    _NLINES,
    _PF,
    _WBQ,
    _AITE,
    _AITW,
    _AITB,
    _AIT_HIT,
    _AIT_MISS,
    _T_READ,
    _T_WRITE,
    _OCC_R,
    _OCC_W,
    _WEAR,
    _MIG,
    _UNCORE,
    _RMW_READ,
    _ACK_NT,
    _ACK_CLWB,
    _RPQ,
    _WPQ,
    _BURST,
    _TURN,
    _ROW_HIT,
    _ROW_MISS,
    _ROW_BYTES,
    _BANKS,
    _EXTRA,
    _GAP,
    _STREAMS,
    _JITTER,
    _RWI,
    _PF_TOL,
    _PIN,
) = range(37)
_NPARAM = 37

# Statistic indices returned by the kernel.
(
    S_MEDIA_READS,
    S_MEDIA_WRITES,
    S_RMW,
    S_BUF_HITS,
    S_BUF_MISSES,
    S_AIT_HITS,
    S_AIT_MISSES,
    S_MIGRATIONS,
    S_PREFETCH,
    S_PREFETCH_USED,
    S_END,
) = range(11)
_NSTAT = 11

_WEAR_SLOTS = 1 << 16


def _param_vector(profile: Profile, op: str, ndimms: int) -> np.ndarray:
    v = profile.values
    c = profile.cycles
    kind = {"optane": 0, "dram": 1, "cxl": 2}[v["media.kind"]]
    P = np.zeros(_NPARAM, dtype=np.int64)
    P[_KIND] = kind
    P[_NDIMM] = ndimms
    P[_IL] = v["dimm.interleave_bytes"]
    P[_LINE] = v["rmw.line_bytes"] if kind == 0 else 64
    P[_NLINES] = v["rmw.buffer_lines"]
    P[_PF] = v["rmw.prefetch_lines"]
    P[_WBQ] = v["rmw.writeback_entries"]
    P[_AITE] = v["ait.buffer_entries"]
    P[_AITW] = min(v["ait.ways"], v["ait.buffer_entries"])
    P[_AITB] = v["ait.block_bytes"]
    P[_AIT_HIT] = c("ait.hit_ns")
    P[_AIT_MISS] = c("ait.miss_ns")
    P[_T_READ] = c("media.t_read_ns")
    P[_T_WRITE] = c("media.t_write_ns")
    P[_OCC_R] = max(1, c("media.read_occupancy_ns"))
    P[_OCC_W] = max(1, c("media.write_occupancy_ns"))
    P[_WEAR] = v["media.wear_threshold"]
    P[_MIG] = c("media.migration_ns")
    P[_UNCORE] = c("cpu.uncore_read_ns")
    P[_RMW_READ] = c("rmw.read_ns")
    if kind == 0:
        P[_ACK_NT] = c("cpu.ntstore_ack_ns")
        P[_ACK_CLWB] = c("cpu.clwb_ack_ns")
    else:
        P[_ACK_NT] = c("dram.ntstore_ack_ns")
        P[_ACK_CLWB] = c("dram.clwb_ack_ns")
    P[_RPQ] = v["imc.rpq_entries"]
    P[_WPQ] = v["imc.wpq_entries"]
    P[_BURST] = max(1, profile.ns_to_cycles(64.0 / v["imc.channel_gbps"]))
    P[_TURN] = 0
    P[_ROW_HIT] = c("dram.row_hit_ns")
    P[_ROW_MISS] = c("dram.row_miss_ns")
    P[_ROW_BYTES] = v["dram.row_bytes"]
    P[_BANKS] = v["dram.banks"]
    P[_EXTRA] = c("cxl.extra_ns")
    if kind != 0:
        P[_OCC_R] = max(1, c("dram.read_occupancy_ns"))
        P[_OCC_W] = max(1, c("dram.write_occupancy_ns"))
    P[_STREAMS] = max(1, v["rmw.prefetch_streams"])
    P[_JITTER] = c("cpu.issue_jitter_ns")
    P[_RWI] = c("media.read_write_interference_ns")
    P[_PF_TOL] = 1
    P[_PIN] = 1 if v["rmw.pin_writeback"] else 0
    P[_GAP] = c("cpu.load_issue_ns") if op == "load" else c("cpu.store_issue_ns")
    return P


# --------------------------------------------------------------------------------------
# numba kernel
# --------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _mix(x):
    # splitmix64 finaliser in wrapping int64 arithmetic, result >= 0
    x = x + np.int64(-7046029254386353131)
    x = (x ^ ((x >> 30) & np.int64(0x3FFFFFFFF))) * np.int64(-4658895280553007687)
    x = (x ^ ((x >> 27) & np.int64(0x1FFFFFFFFF))) * np.int64(-7723592293110705685)
    x = x ^ ((x >> 31) & np.int64(0x1FFFFFFFF))
    return x & np.int64(0x7FFFFFFFFFFFFFFF)


@numba.njit(cache=True)
def _heap_push(hk, hv, n, key, val):
    i = n
    hk[i] = key
    hv[i] = val
    while i > 0:
        p = (i - 1) >> 1
        if hk[p] <= hk[i]:
            break
        hk[p], hk[i] = hk[i], hk[p]
        hv[p], hv[i] = hv[i], hv[p]
        i = p
    return n + 1


@numba.njit(cache=True)
def _heap_pop(hk, hv, n):
    key = hk[0]
    val = hv[0]
    n -= 1
    hk[0] = hk[n]
    hv[0] = hv[n]
    i = 0
    while True:
        lc = 2 * i + 1
        if lc >= n:
            break
        m = lc
        if lc + 1 < n and hk[lc + 1] < hk[lc]:
            m = lc + 1
        if hk[i] <= hk[m]:
            break
        hk[m], hk[i] = hk[i], hk[m]
        hv[m], hv[i] = hv[i], hv[m]
        i = m
    return key, val, n


@numba.njit(cache=True)
def _replace_min(h, d, value):
    """Replace the smallest element of the min-heap row ``h[d]`` by ``value``."""
    n = h.shape[1]
    i = 0
    while True:
        lc = 2 * i + 1
        if lc >= n:
            break
        m = lc
        if lc + 1 < n and h[d, lc + 1] < h[d, lc]:
            m = lc + 1
        if value <= h[d, m]:
            break
        h[d, i] = h[d, m]
        i = m
    h[d, i] = value


@numba.njit(cache=True)
def _find(tag, X):
    for e in range(tag.shape[0]):
        if tag[e] == X:
            return e
    return -1


@numba.njit(cache=True)
def _ait(P, ait_tag, ait_lru, d, blk, clock, st):
    ways = P[_AITW]
    nsets = max(1, P[_AITE] // ways)
    s = blk % nsets
    base = s * ways
    victim = base
    for w in range(base, base + ways):
        if ait_tag[d, w] == blk:
            ait_lru[d, w] = clock
            st[S_AIT_HITS] += 1
            return P[_AIT_HIT]
        if ait_lru[d, w] < ait_lru[d, victim]:
            victim = w
    ait_tag[d, victim] = blk
    ait_lru[d, victim] = clock
    st[S_AIT_MISSES] += 1
    return P[_AIT_MISS]


@numba.njit(cache=True)
def _writeback(P, d, line, t_evt, t_data, wq, wport, rport, wear, st):
    """Queue a whole-line media write at ``t_evt`` (its data ready at ``t_data``); return
    the time the write queue admitted it."""
    ts = max(t_evt, wq[d, 0])  # earliest free write-queue slot (min-heap root)
    ws = max(ts, t_data, wport[d])
    wport[d] = ws + P[_OCC_W]
    _replace_min(wq, d, ws + P[_T_WRITE])
    st[S_MEDIA_WRITES] += 1
    blk = line // (P[_AITB] // P[_LINE])
    h = blk % _WEAR_SLOTS
    wear[d, h] += 1
    if wear[d, h] >= P[_WEAR]:
        wear[d, h] = 0
        st[S_MIGRATIONS] += 1
        stall_end = max(wport[d], ws) + P[_MIG]
        wport[d] = stall_end
        rport[d] = max(rport[d], stall_end)
    return ts


@numba.njit(cache=True)
def _media_read(P, d, line, t, rport, ait_tag, ait_lru, clock, st):
    ms = max(t, rport[d])
    rport[d] = ms + P[_OCC_R]
    st[S_MEDIA_READS] += 1
    lpb = P[_AITB] // P[_LINE]
    return ms + _ait(P, ait_tag, ait_lru, d, line // lpb, clock, st) + P[_T_READ]


@numba.njit(cache=True)
def _alloc(
    P,
    d,
    X,
    t,
    tag,
    mask,
    filled,
    ready,
    lru,
    pf,
    wq,
    wport,
    rport,
    wear,
    ait_tag,
    ait_lru,
    clock,
    st,
    allow_dirty,
):
    """Find an XPBuffer entry for line X at time t; return (entry, time) or (-1, t).

    Victim order: a free entry, a clean line whose every 64 B part has been read (dead),
    the LRU clean line, then the LRU dirty line (written back; read-modify-write if it was
    only partly written and never filled)."""
    full = (1 << (P[_LINE] // 64)) - 1
    while True:
        free = -1
        dead = -1
        clean = -1
        dirty = -1
        soonest = np.int64(1) << 62
        for e in range(tag.shape[1]):
            if tag[d, e] < 0:
                free = e
                break
            if ready[d, e] > t:
                if ready[d, e] < soonest:
                    soonest = ready[d, e]
                continue
            if mask[d, e] == 0:
                if pf[d, e] == 2:
                    if dead < 0 or lru[d, e] < lru[d, dead]:
                        dead = e
                elif clean < 0 or lru[d, e] < lru[d, clean]:
                    clean = e
            elif dirty < 0 or lru[d, e] < lru[d, dirty]:
                dirty = e
        if free >= 0:
            e = free
        elif dead >= 0:
            e = dead
        elif clean >= 0:
            e = clean
        elif dirty >= 0 and allow_dirty:
            e = dirty
            if filled[d, e] == 1 or mask[d, e] == full:
                t = max(t, _writeback(P, d, tag[d, e], t, t, wq, wport, rport, wear, st))
            else:
                st[S_RMW] += 1
                rt = _media_read(P, d, tag[d, e], t, rport, ait_tag, ait_lru, clock, st)
                t = max(t, _writeback(P, d, tag[d, e], t, rt, wq, wport, rport, wear, st))
        elif not allow_dirty:
            return -1, t
        else:
            t = soonest
            continue
        tag[d, e] = X
        mask[d, e] = 0
        filled[d, e] = 0
        ready[d, e] = t
        pf[d, e] = 0
        lru[d, e] = clock
        return e, t


@numba.njit(cache=True)
def _stream(P, strm, strm_run, strm_lru, d, line, clock):
    """Sequential-stream detector of the DIMM prefetcher (LRU table of streams): True when
    ``line`` continues (within two lines, any order) an ascending run of three lines."""
    v = 0
    for i in range(strm.shape[1]):
        last = strm[d, i]
        if last - P[_PF_TOL] <= line <= last + 1:
            if line > last:
                strm[d, i] = line
                strm_run[d, i] += line - last
            strm_lru[d, i] = clock
            return strm_run[d, i] >= 2
        if strm_lru[d, i] < strm_lru[d, v]:
            v = i
    strm[d, v] = line
    strm_run[d, v] = 0
    strm_lru[d, v] = clock
    return False


@numba.njit(cache=True)
def _chan(P, d, t, direction, chanfree, chandir):
    s = max(t, chanfree[d])
    if chandir[d] != direction:
        s += P[_TURN]
        chandir[d] = direction
    chanfree[d] = s + P[_BURST]
    return s


@numba.njit(cache=True)
def _locate(P, addr):
    il = P[_IL]
    blk = addr // il
    d = blk % P[_NDIMM]
    local = (blk // P[_NDIMM]) * il + addr % il
    return d, local


@numba.njit(cache=True)
def _read(P, d, local, t, S, st, clock):
    (
        tag,
        mask,
        filled,
        ready,
        lru,
        pf,
        wq,
        wport,
        rport,
        wear,
        ait_tag,
        ait_lru,
        rpq,
        wpq,
        chanfree,
        chandir,
        openrow,
        strm,
        strm_run,
        strm_lru,
        wport_in,
        rmask,
    ) = S
    a1 = max(t, rpq[d, 0])  # earliest free RPQ entry (min-heap root)
    if P[_KIND] != 0:
        bank = (local // P[_ROW_BYTES]) % P[_BANKS]
        row = local // (P[_ROW_BYTES] * P[_BANKS])
        s = max(a1, chanfree[d])
        chanfree[d] = s + P[_OCC_R]
        acc = P[_ROW_HIT] if openrow[d, bank] == row else P[_ROW_MISS]
        openrow[d, bank] = row
        st[S_MEDIA_READS] += 1
        done = s + acc + P[_EXTRA] + P[_UNCORE]
        _replace_min(rpq, d, done - P[_UNCORE])
        return done
    a1 = _chan(P, d, a1, 0, chanfree, chandir)
    line = local // P[_LINE]
    full = (1 << (P[_LINE] // 64)) - 1
    e = _find(tag[d], line)
    if e >= 0 and (filled[d, e] == 1 or mask[d, e] == full):
        tdata = max(a1, ready[d, e])
        st[S_BUF_HITS] += 1
        if P[_PF] > 0:
            _stream(P, strm, strm_run, strm_lru, d, line, clock)
        if pf[d, e] == 1:
            pf[d, e] = 0
            rmask[d, e] = 0
            st[S_PREFETCH_USED] += 1
            lpb = P[_AITB] // P[_LINE]
            if P[_PF] > 0 and (line + P[_PF]) // lpb == line // lpb:
                _prefetch(P, d, line + P[_PF], a1, S, st, clock)
    else:
        st[S_BUF_MISSES] += 1
        if e < 0:
            e, a1 = _alloc(
                P,
                d,
                line,
                a1,
                tag,
                mask,
                filled,
                ready,
                lru,
                pf,
                wq,
                wport,
                rport,
                wear,
                ait_tag,
                ait_lru,
                clock,
                st,
                True,
            )
            rmask[d, e] = 0
        tdata = _media_read(P, d, line, a1, rport, ait_tag, ait_lru, clock, st)
        ready[d, e] = tdata
        filled[d, e] = 1
        if P[_PF] > 0 and _stream(P, strm, strm_run, strm_lru, d, line, clock):
            lpb = P[_AITB] // P[_LINE]
            for j in range(1, P[_PF] + 1):
                if (line + j) // lpb == line // lpb:
                    _prefetch(P, d, line + j, a1, S, st, clock)
    lru[d, e] = clock
    rmask[d, e] |= 1 << ((local % P[_LINE]) // 64)
    if rmask[d, e] == full and pf[d, e] == 0:
        pf[d, e] = 2
    # the DIMM controller returns read data and streams write-backs one at a time:
    # every 64 B read served to the CPU takes write-port time
    wport[d] = max(wport[d], a1) + P[_RWI]
    _replace_min(rpq, d, tdata + P[_RMW_READ])
    return tdata + P[_RMW_READ] + P[_UNCORE]


@numba.njit(cache=True)
def _prefetch(P, d, line, t, S, st, clock):
    (
        tag,
        mask,
        filled,
        ready,
        lru,
        pf,
        wq,
        wport,
        rport,
        wear,
        ait_tag,
        ait_lru,
        rpq,
        wpq,
        chanfree,
        chandir,
        openrow,
        strm,
        strm_run,
        strm_lru,
        wport_in,
        rmask,
    ) = S
    if _find(tag[d], line) >= 0:
        return
    e, t2 = _alloc(
        P,
        d,
        line,
        t,
        tag,
        mask,
        filled,
        ready,
        lru,
        pf,
        wq,
        wport,
        rport,
        wear,
        ait_tag,
        ait_lru,
        clock,
        st,
        False,
    )
    if e < 0:
        return
    st[S_PREFETCH] += 1
    rmask[d, e] = 0
    ready[d, e] = _media_read(P, d, line, t2, rport, ait_tag, ait_lru, clock, st)
    filled[d, e] = 1
    pf[d, e] = 1


@numba.njit(cache=True)
def _write(P, d, local, t, ack, S, st, clock):
    (
        tag,
        mask,
        filled,
        ready,
        lru,
        pf,
        wq,
        wport,
        rport,
        wear,
        ait_tag,
        ait_lru,
        rpq,
        wpq,
        chanfree,
        chandir,
        openrow,
        strm,
        strm_run,
        strm_lru,
        wport_in,
        rmask,
    ) = S
    a1 = max(t, wpq[d, 0])  # earliest free WPQ entry (min-heap root)
    if P[_KIND] != 0:
        bank = (local // P[_ROW_BYTES]) % P[_BANKS]
        row = local // (P[_ROW_BYTES] * P[_BANKS])
        s = max(a1, chanfree[d])
        chanfree[d] = s + P[_OCC_W]
        openrow[d, bank] = row
        st[S_MEDIA_WRITES] += 1
        _replace_min(wpq, d, s)
        return a1 + ack + P[_EXTRA]
    # the DIMM accepts writes in order: a write waits for the one before it
    acc = max(_chan(P, d, a1, 1, chanfree, chandir), wport_in[d])
    line = local // P[_LINE]
    sub = (local % P[_LINE]) // 64
    full = (1 << (P[_LINE] // 64)) - 1
    e = _find(tag[d], line)
    if e < 0:
        st[S_BUF_MISSES] += 1
        e, acc = _alloc(
            P,
            d,
            line,
            acc,
            tag,
            mask,
            filled,
            ready,
            lru,
            pf,
            wq,
            wport,
            rport,
            wear,
            ait_tag,
            ait_lru,
            clock,
            st,
            True,
        )
        rmask[d, e] = 0
    else:
        st[S_BUF_HITS] += 1
    mask[d, e] |= 1 << sub
    pf[d, e] = 0
    lru[d, e] = clock
    if mask[d, e] == full:
        acc = max(acc, _writeback(P, d, line, acc, acc, wq, wport, rport, wear, st))
        mask[d, e] = 0
        filled[d, e] = 1
        if P[_PIN] != 0:
            # the entry is busy until its media write completes (VANS: not idle)
            ready[d, e] = max(ready[d, e], wport[d] - P[_OCC_W] + P[_T_WRITE])
        else:
            ready[d, e] = max(ready[d, e], acc)
    _replace_min(wpq, d, acc)
    wport_in[d] = acc
    return a1 + ack


@numba.njit(cache=True)
def _address(n, t, size, nsub, pattern, base, nacc, seed, reorder, W, perm, rngs):
    """Address of the n-th emitted 64 B request of thread t."""
    if reorder:
        if n % W == 0:
            for i in range(W):
                perm[t, i] = i
            for i in range(W - 1, 0, -1):
                rngs[t] = _mix(rngs[t])
                j = rngs[t] % (i + 1)
                perm[t, i], perm[t, j] = perm[t, j], perm[t, i]
        j = (n // W) * W + perm[t, n % W]
    else:
        j = n
    k = j // nsub
    sub = j % nsub
    if pattern == 0:
        off = (k % nacc) * size
    else:
        off = (_mix(seed ^ (t << 40) ^ k) % nacc) * size
    return base[t] + off + sub * 64


@numba.njit(cache=True)
def _simulate(P, op, pattern, size, nthreads, nreq, region, W, seed, reorder, rfo, lat, comp):
    ndimm = P[_NDIMM]
    nl = P[_NLINES] if P[_KIND] == 0 else 1
    tag = np.full((ndimm, nl), -1, dtype=np.int64)
    mask = np.zeros((ndimm, nl), dtype=np.int64)
    filled = np.zeros((ndimm, nl), dtype=np.int64)
    ready = np.zeros((ndimm, nl), dtype=np.int64)
    lru = np.zeros((ndimm, nl), dtype=np.int64)
    pf = np.zeros((ndimm, nl), dtype=np.int64)
    wq = np.zeros((ndimm, P[_WBQ]), dtype=np.int64)
    wport = np.zeros(ndimm, dtype=np.int64)
    rport = np.zeros(ndimm, dtype=np.int64)
    wear = np.zeros((ndimm, _WEAR_SLOTS if P[_KIND] == 0 else 1), dtype=np.int64)
    aw = max(1, (P[_AITE] // P[_AITW]) * P[_AITW]) if P[_KIND] == 0 else 1
    ait_tag = np.full((ndimm, aw), -1, dtype=np.int64)
    ait_lru = np.zeros((ndimm, aw), dtype=np.int64)
    rpq = np.zeros((ndimm, P[_RPQ]), dtype=np.int64)
    wpq = np.zeros((ndimm, P[_WPQ]), dtype=np.int64)
    chanfree = np.zeros(ndimm, dtype=np.int64)
    chandir = np.zeros(ndimm, dtype=np.int64)
    openrow = np.full((ndimm, P[_BANKS]), -1, dtype=np.int64)
    strm = np.full((ndimm, P[_STREAMS]), -2, dtype=np.int64)
    strm_lru = np.zeros((ndimm, P[_STREAMS]), dtype=np.int64)
    S = (
        tag,
        mask,
        filled,
        ready,
        lru,
        pf,
        wq,
        wport,
        rport,
        wear,
        ait_tag,
        ait_lru,
        rpq,
        wpq,
        chanfree,
        chandir,
        openrow,
        strm,
        np.zeros_like(strm),
        strm_lru,
        np.zeros(ndimm, dtype=np.int64),
        np.zeros((ndimm, nl), dtype=np.int64),
    )
    st = np.zeros(_NSTAT, dtype=np.int64)

    nsub = max(1, size // 64)
    slice_b = (region // nthreads) // size * size
    nacc = max(1, slice_b // size)
    base = np.zeros(nthreads, dtype=np.int64)
    for t in range(nthreads):
        base[t] = t * slice_b
    perm = np.zeros((nthreads, W), dtype=np.int64)
    rngs = np.zeros(nthreads, dtype=np.int64)
    for t in range(nthreads):
        rngs[t] = _mix(seed * 1000003 + t)
    ring = np.zeros((nthreads, W), dtype=np.int64)  # completion time per slot
    ring_req = np.full((nthreads, W), -1, dtype=np.int64)  # request index held in slot
    issued = np.zeros(nthreads, dtype=np.int64)
    last_issue = np.full(nthreads, -(np.int64(1) << 40), dtype=np.int64)
    pending = np.zeros(nthreads, dtype=np.int64)
    # event heap: key = time * 2^20 + sequence (FIFO ties), value = request * 2 + phase
    cap = nthreads * (W + 2) + 16
    hk = np.zeros(cap, dtype=np.int64)
    hv = np.zeros(cap, dtype=np.int64)
    nh = 0
    seq = np.int64(0)
    SHIFT = np.int64(1) << 20
    for t in range(nthreads):
        nh = _heap_push(hk, hv, nh, seq, (t * nreq) * 2)
        pending[t] = 1
        seq += 1
    evaddr = np.zeros(nthreads * nreq, dtype=np.int64)
    evissue = np.zeros(nthreads * nreq, dtype=np.int64)
    clock = np.int64(0)
    ack_nt = P[_ACK_NT]
    ack_cl = P[_ACK_CLWB]
    while nh > 0:
        key, val, nh = _heap_pop(hk, hv, nh)
        now = key // SHIFT
        g = val // 2
        phase = val % 2
        t = g // nreq
        n = g % nreq
        clock += 1
        done = np.int64(-1)
        if phase == 0:
            pending[t] = 0
            addr = _address(n, t, size, nsub, pattern, base, nacc, seed, reorder, W, perm, rngs)
            d, local = _locate(P, addr)
            issued[t] = n + 1
            last_issue[t] = now
            evissue[g] = now
            if op == 0:
                done = _read(P, d, local, now, S, st, clock)
            elif op == 1:
                done = _write(P, d, local, now, ack_nt, S, st, clock)
            elif rfo:
                # read for ownership; the write-back is its own event once the line is owned
                rdone = _read(P, d, local, now, S, st, clock)
                evaddr[g] = addr
                nh = _heap_push(hk, hv, nh, rdone * SHIFT + (seq % SHIFT), g * 2 + 1)
                seq += 1
            else:
                done = _write(P, d, local, now, ack_cl, S, st, clock)
        else:
            d, local = _locate(P, evaddr[g])
            done = _write(P, d, local, now, ack_cl, S, st, clock)
        if done >= 0:
            lat[g] = done - evissue[g]
            comp[g] = done
            ring[t, n % W] = done
            ring_req[t, n % W] = n
        # schedule the next request of thread t if its window allows
        m = issued[t]
        if pending[t] == 0 and m < nreq:
            if P[_JITTER] > 0:
                rngs[t] = _mix(rngs[t])
                now = now + rngs[t] % (P[_JITTER] + 1)
            if m < W:
                nxt = max(last_issue[t] + P[_GAP], now)
                nh = _heap_push(hk, hv, nh, nxt * SHIFT + (seq % SHIFT), (t * nreq + m) * 2)
                seq += 1
                pending[t] = 1
            elif ring_req[t, m % W] == m - W:
                nxt = max(last_issue[t] + P[_GAP], ring[t, m % W], now)
                nh = _heap_push(hk, hv, nh, nxt * SHIFT + (seq % SHIFT), (t * nreq + m) * 2)
                seq += 1
                pending[t] = 1
    st[S_END] = 0
    for g in range(comp.shape[0]):
        if comp[g] > st[S_END]:
            st[S_END] = comp[g]
    return st


# --------------------------------------------------------------------------------------
# Python API
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaResult:
    """Outcome of one simulated request stream.

    Attributes
    ----------
    latency_ns : ndarray of shape (N,)
        Latency of every 64 B request (issue to data return, or to WPQ acceptance for
        writes), float64 ns, ordered by thread then program order.
    bandwidth_gbps : float
        CPU bytes per second in steady state (requests completing after the first 20 %).
    requests : int
        64 B requests simulated.
    media_read_bytes, media_write_bytes : int
        Bytes read from and written to the media (whole XPLines, RMW included).
    cpu_read_bytes, cpu_write_bytes : int
        Bytes the CPU read (loads and RFOs) and wrote.
    stats : dict of str to int
        Counters: buffer hits/misses, AIT hits/misses, rmw, migrations, prefetches.
    elapsed_ns : float
        Simulated time of the whole run.
    """

    latency_ns: np.ndarray
    bandwidth_gbps: float
    requests: int
    media_read_bytes: int
    media_write_bytes: int
    cpu_read_bytes: int
    cpu_write_bytes: int
    stats: dict
    elapsed_ns: float

    @property
    def write_amplification(self) -> float:
        """Media bytes written per CPU byte written (0.0 when nothing was written)."""
        return self.media_write_bytes / self.cpu_write_bytes if self.cpu_write_bytes else 0.0

    @property
    def read_amplification(self) -> float:
        """Media bytes read per CPU byte read (0.0 when nothing was read)."""
        return self.media_read_bytes / self.cpu_read_bytes if self.cpu_read_bytes else 0.0

    def percentile_ns(self, q: float) -> float:
        """Latency percentile ``q`` (0-100) in ns."""
        return float(np.percentile(self.latency_ns, q)) if self.latency_ns.size else 0.0


_STAT_NAMES = (
    "media_reads",
    "media_writes",
    "rmw",
    "buffer_hits",
    "buffer_misses",
    "ait_hits",
    "ait_misses",
    "migrations",
    "prefetches",
    "prefetches_used",
    "end_cycles",
)


def simulate(
    profile: Profile,
    op: str,
    pattern: str,
    size_bytes: int,
    threads: int,
    *,
    dimms: int | None = None,
    region_bytes: int | None = None,
    requests: int = 200_000,
    seed: int = 0,
    idle: bool = False,
) -> MediaResult:
    """Simulate ``threads`` threads issuing ``op`` accesses on the modelled device.

    Parameters
    ----------
    profile : Profile
        Hardware profile.
    op : {"load", "ntstore", "clwb"}
        ``clwb`` is store + clwb: a read for ownership, then the line's write-back.
    pattern : {"seq", "rand"}
        Each thread works in its own ``region_bytes / threads`` slice, sequentially or at
        random ``size_bytes``-aligned offsets.
    size_bytes : int
        Access size (multiple of 64); an access is ``size_bytes / 64`` requests.
    threads : int
        Issuing threads.
    dimms : int, optional
        Interleave set (default ``dimm.count``); 1 is a single non-interleaved DIMM.
    region_bytes : int, optional
        Bytes the accesses are confined to (default 1 GiB per DIMM, at least 64 MiB per
        thread); a small region is a hotspot.
    requests : int
        Total 64 B requests over all threads.
    seed : int
        Seed of the random pattern and of the arrival order within a thread's window.
    idle : bool
        LATTester idle latency: one request outstanding, program order, and for ``clwb``
        the line already cached (no read for ownership).
    """
    if op not in OPS:
        raise InputError(f"op must be one of {', '.join(OPS)}", op)
    if pattern not in PATTERNS:
        raise InputError(f"pattern must be one of {', '.join(PATTERNS)}", pattern)
    if size_bytes < 64 or size_bytes % 64:
        raise InputError("access size must be a positive multiple of 64 bytes", str(size_bytes))
    if threads < 1 or threads > 4096:
        raise InputError("threads must be between 1 and 4096", str(threads))
    ndimm = profile["dimm.count"] if dimms is None else int(dimms)
    if ndimm < 1 or ndimm > 64:
        raise InputError("dimms must be between 1 and 64", str(dimms))
    if region_bytes is None:
        region_bytes = max(ndimm << 30, threads * (64 << 20))
    region_bytes = int(region_bytes)
    if region_bytes < threads * size_bytes:
        raise InputError(
            f"region of {region_bytes} bytes is smaller than {threads} threads x {size_bytes} B",
            str(region_bytes),
        )
    if region_bytes > ndimm * profile["dimm.capacity_bytes"]:
        raise InputError("region is larger than the interleave set", str(region_bytes))
    if requests < threads:
        raise InputError("need at least one request per thread", str(requests))
    opc = OPS.index(op)
    if idle:
        window = 1
    else:
        window = profile[
            {"load": "cpu.load_window", "ntstore": "cpu.ntstore_window", "clwb": "cpu.clwb_window"}[
                op
            ]
        ]
    P = _param_vector(profile, op, ndimm)
    nreq = max(1, requests // threads)
    n = nreq * threads
    lat = np.zeros(n, dtype=np.int64)
    comp = np.zeros(n, dtype=np.int64)
    st = _simulate(
        P,
        np.int64(opc),
        np.int64(PATTERNS.index(pattern)),
        np.int64(size_bytes),
        np.int64(threads),
        np.int64(nreq),
        np.int64(region_bytes),
        np.int64(window),
        np.int64(seed),
        not idle,
        (op == "clwb") and not idle,
        lat,
        comp,
    )
    freq = profile.freq_ghz
    cs = np.sort(comp)
    k0 = int(0.2 * n)
    span = cs[-1] - cs[k0]
    bw = (n - 1 - k0) * 64 / (span / freq) if span > 0 else 0.0
    line = P[_LINE]
    reads = n if op in ("load",) or (op == "clwb" and not idle) else 0
    writes = n if op != "load" else 0
    stats = {name: int(st[i]) for i, name in enumerate(_STAT_NAMES)}
    return MediaResult(
        latency_ns=lat / freq,
        bandwidth_gbps=float(bw),
        requests=n,
        media_read_bytes=int(st[S_MEDIA_READS] * line),
        media_write_bytes=int(st[S_MEDIA_WRITES] * line),
        cpu_read_bytes=reads * 64,
        cpu_write_bytes=writes * 64,
        stats=stats,
        elapsed_ns=float(st[S_END] / freq),
    )
