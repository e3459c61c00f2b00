"""One hunt episode run whole in compiled code: op generation, the session's op semantics,
the DAX layer and filesystem, and every invariant check.

:func:`run_episode` is the compiled twin of :func:`sim.hunt.search._run_episode` for the
built-in designs. Its contract is one-sided: it says whether the episode is *clean* (no
invariant of ``todo`` is violated after any op, nor at the quiescent points) and how many ops
it applied; when it sees a possible violation, or its capacities overflow, it stops and says
so, and the search reruns that episode on the Python stack, which then finds exactly what it
always finds. A check here may therefore be broader than the Python's incremental one (a
false alarm costs one Python episode) but never narrower: the tests compare it with the
Python path over many seeds, designs and op mixes (``tests/test_jit_episode.py``).

Invariant bits of ``todo`` follow :data:`sim.hunt.invariants.ALL_NAMES`.
"""

from __future__ import annotations

from sim.constants import PAGE_SIZE
from sim.dax.compiled import (
    PMD_NR,
    RULE_OF_DESIGN_ARR,
    S_DESIGN,
    S_MF_BAD,
    S_MF_FB_BAD,
    S_NTOUCH,
    S_NVMA,
    S_OVERFLOW,
    SIGBUS,
    WRITTEN,
    dax_clone,
    dax_dedupe,
    dax_memory_failure,
    dax_mmap,
    dax_mread,
    dax_munmap,
    dax_mwrite,
    dax_punch,
    dax_pwrite,
    dax_reset,
    dax_truncate,
    dax_unlink,
    dax_unshare,
    dax_zero_range,
)
from sim.fs.compiled import (
    ERR_OVERFLOW,
    _wblock,
    fs_create,
    fs_iomap,
    fs_refcounts_ok,
    fs_reset,
    fs_shared_pages,
)
from sim.fs.compiled_content import (
    cm_clone,
    cm_create,
    cm_extend_to,
    cm_pwrite,
    cm_store,
    cm_truncate,
    cm_unlink,
    cm_zero,
    content_reset,
)
from sim.fs.compiled_pages import pg_equal
from sim.hunt.jit.generate import (
    K_CLONE,
    K_DEDUPE,
    K_HWPOISON,
    K_MREAD,
    K_MUNMAP,
    K_MWRITE,
    K_PUNCH,
    K_PWRITE,
    K_TRUNCATE,
    K_UNLINK,
    K_UNSHARE,
    K_ZERO,
    generate_op,
)
from sim.jit import njit
from sim.memmap.layout import COUNTERS, FLAG_SENTINEL, PHANTOM_TAG, SITES

__all__ = ["run_episode", "CLEAN", "EVENT", "FALLBACK", "NAME_BITS"]

PAGE = PAGE_SIZE
CLEAN, EVENT, FALLBACK = 0, 1, 2

#: Bit of each invariant in ``todo`` (the order of ``ALL_NAMES``).
NAME_BITS = {
    "association_truth": 0,
    "nothing_left_behind": 1,
    "no_warnings": 2,
    "memory_failure": 3,
    "data_integrity": 4,
    "refcount_conservation": 5,
    "no_sigbus": 6,
    "memory_failure_fallback": 7,
}
B_ASSOC, B_NLB, B_WARN, B_MF, B_DATA, B_REFC, B_SIGBUS, B_MFFB = 0, 1, 2, 3, 4, 5, 6, 7

_W0 = len(COUNTERS)
_NW = len(SITES)


# ------------------------------------------------------------------------ checks
@njit(cache=True)
def _page_ok(rule, m, i, k, ms, isum):
    if m == PHANTOM_TAG:
        m = 0
    if k == 0:
        return m == 0 and i == 0
    if rule == 0:
        return k == 1 and m == ms and i == isum
    if rule == 1:
        if k == 1 and m == ms and i == isum:
            return True
        return m == FLAG_SENTINEL and i == k
    if k == 1 and m == ms and i == isum:
        return True
    return m == 0 and i == k


@njit(cache=True)
def _block_ok(dst, rule, b):
    """An order-9 folio block: its head against the entries starting in the block, its
    tails at (0, 0)."""
    h = b * PMD_NR
    if not _page_ok(rule, dst.mapping[h], dst.index[h], dst.bk_k[b], dst.bk_m[b], dst.bk_i[b]):
        return False
    for p in range(h + 1, h + PMD_NR):
        if dst.mapping[p] != 0 or dst.index[p] != 0:
            return False
    return True


@njit(cache=True)
def _association_touched(dst):
    """Association truth of every page (folio) the last op touched; False on a mismatch."""
    rule = RULE_OF_DESIGN_ARR[dst.scal[S_DESIGN]]
    npages = dst.mapping.shape[0]
    for t in range(dst.scal[S_NTOUCH]):
        pfn, n = dst.touch[t, 0], dst.touch[t, 1]
        for p in range(pfn, min(pfn + n, npages)):
            b = p >> 9
            if rule == 2 and (dst.order[b] == 9 or dst.order0[b] == 9):
                if dst.order[b] == 9:
                    if not _block_ok(dst, rule, b):
                        return False
                else:  # split by this op: every page of the block on its own
                    h = b * PMD_NR
                    for q in range(h, min(h + PMD_NR, npages)):
                        if not _page_ok(
                            rule,
                            dst.mapping[q],
                            dst.index[q],
                            dst.cov_k[q],
                            dst.cov_m[q],
                            dst.cov_i[q],
                        ):
                            return False
                continue
            if not _page_ok(
                rule, dst.mapping[p], dst.index[p], dst.cov_k[p], dst.cov_m[p], dst.cov_i[p]
            ):
                return False
    return True


@njit(cache=True)
def _warnings(dst, wsites):
    t = 0
    for j in range(wsites.shape[0]):
        t += dst.stats[_W0 + wsites[j]]
    return t


@njit(cache=True)
def _same_bytes(fsst, cst, s, lo, hi):
    """read(2) of ``[lo, hi)`` of slot ``s`` equals the content model's bytes (both files
    at least ``hi`` bytes long), page by page on the page descriptors."""
    u = cst.pu[s]
    d = cst.data[s]
    pos = lo
    while pos < hi:
        pg = pos // PAGE
        base = pg * PAGE
        e = min(hi, base + PAGE)
        if not pg_equal(fsst.ub, fsst.data, _wblock(fsst, s, pg), u, d, pg, pos - base, e - base):
            return False
        pos = e
    return True


@njit(cache=True)
def _maps_coherent(fsst, dst, s):
    """Every PTE and PMD of slot ``s``'s mappings maps the block the file has there (the
    zero page over a hole or unwritten extent). False (rerun on the Python stack, which
    compares the bytes: :func:`sim.hunt.invariants.stale_mapping`) where one does not: the
    6.0-6.1 stale PTE of a CoW write(2)."""
    iom = dst.iom
    for v in range(dst.scal[S_NVMA]):
        if not dst.vm[v, 3] or dst.vm[v, 0] != s:
            continue
        pg = dst.vm[v, 1]
        for j in range(dst.vm[v, 2]):
            if dst.vptw[v, j] < 0:
                continue
            if fs_iomap(fsst, s, pg + j, 1, iom):
                return False
            cur = iom[1] if iom[0] == WRITTEN else -1
            if dst.vpte[v, j] != cur:
                return False
        c = dst.vm[v, 4]
        if c >= 0:
            if fs_iomap(fsst, s, c, PMD_NR, iom):
                return False
            p = dst.vm[v, 5]
            if iom[2] < PMD_NR:
                return False
            if iom[0] == WRITTEN:
                if iom[1] != p:
                    return False
            elif p >= 0:
                return False
    return True


@njit(cache=True)
def _files_agree(fsst, cst, nfiles):
    for s in range(nfiles):
        if (fsst.ino[s] >= 0) != (cst.exists[s] != 0):
            return False
        if fsst.ino[s] >= 0 and fsst.size[s] != cst.size[s]:
            return False
    return True


@njit(cache=True)
def _data_full(fsst, cst, nfiles):
    if not _files_agree(fsst, cst, nfiles):
        return False
    for s in range(nfiles):
        if fsst.ino[s] >= 0 and not _same_bytes(fsst, cst, s, 0, fsst.size[s]):
            return False
    return True


@njit(cache=True)
def _no_file(fsst, nfiles):
    for s in range(nfiles):
        if fsst.ino[s] >= 0:
            return False
    return True


@njit(cache=True)
def _words_clean(dst):
    for p in range(dst.mapping.shape[0]):
        if dst.mapping[p] != 0 or dst.index[p] != 0:
            return False
    return True


@njit(cache=True)
def _check_empty(fsst, dst, cst, nfiles, todo, wsites, data_too):
    """Every check of ``todo`` with no file left (Session.check's full path)."""
    if todo & ((1 << B_ASSOC) | (1 << B_NLB)):
        if not _words_clean(dst):
            return False
    if todo & (1 << B_WARN) and _warnings(dst, wsites) > 0:
        return False
    if data_too:
        if todo & (1 << B_DATA):
            for s in range(nfiles):
                if cst.exists[s]:
                    return False
        if todo & (1 << B_REFC):
            if not fs_refcounts_ok(fsst) or fsst.scal[0] != fsst.rc.shape[0]:
                return False
    return True


# ------------------------------------------------------------------------ session ops
@njit(cache=True)
def _find_map(dst, s, moff, mlen):
    if moff % PAGE or mlen % PAGE:
        return -1
    pg, npg = moff // PAGE, mlen // PAGE
    for v in range(dst.scal[S_NVMA]):
        if dst.vm[v, 3] and dst.vm[v, 0] == s and dst.vm[v, 1] == pg and dst.vm[v, 2] == npg:
            return v
    return -1


@njit(cache=True)
def _select_file(fsst, cst, s):
    if fsst.ino[s] < 0:
        fs_create(fsst, s)
        cm_create(cst, s)


@njit(cache=True)
def _apply(fsst, dst, cst, op, res, buf, rng_out):
    """Session.apply of one op: (ran, err, poisoned); ``rng_out`` gets the byte range the
    data check compares (lo, hi; hi -1 = to EOF)."""
    k, s, src = op[0], op[1], op[2]
    a0, a1, a2, a3, a4 = op[3], op[4], op[5], op[6], op[7]
    rng_out[0] = 0
    rng_out[1] = 0
    if k == K_UNLINK:
        if fsst.ino[s] < 0:
            return False, 0, False
        for v in range(dst.scal[S_NVMA] - 1, -1, -1):
            if dst.vm[v, 3] and dst.vm[v, 0] == s:
                dax_munmap(dst, v)
        err = dax_unlink(dst, fsst, s)
        cm_unlink(cst, s)
        return True, err, False
    if k == K_MUNMAP:
        if fsst.ino[s] < 0:
            return False, 0, False
        v = _find_map(dst, s, a0, a1)
        if v < 0:
            return False, 0, False
        dax_munmap(dst, v)
        return True, 0, False
    if k == K_MREAD or k == K_MWRITE or k == K_HWPOISON:
        if fsst.ino[s] < 0:
            return False, 0, False
        size = fsst.size[s]
        moff, mlen, off, ln = a0, a1, a2, a3
        if k == K_MWRITE:
            lim = min(moff + mlen, size)
        else:
            lim = min(moff + mlen, -(-size // PAGE) * PAGE)
        off = max(off, moff)
        end = min(off + ln, lim)
        if end <= off:
            return False, 0, False
        ln = end - off
        v = _find_map(dst, s, moff, mlen)
        if v < 0:
            v = dax_mmap(dst, s, moff, mlen)
            if v < 0:
                return True, ERR_OVERFLOW, False
        if k == K_MREAD:
            err = dax_mread(dst, fsst, v, off, ln, res)
            return True, err, False
        if k == K_MWRITE:
            err = dax_mwrite(dst, fsst, v, off, ln, a4 & 0xFF, res)
            rng_out[0] = off
            rng_out[1] = end
            if err == 0:
                cm_store(cst, s, off, ln, a4)
            return True, err, False
        err = dax_memory_failure(dst, fsst, v, off, ln, res)
        return True, err, err == 0
    old = cst.size[s] if cst.exists[s] else 0
    if k == K_CLONE or k == K_DEDUPE:
        if fsst.ino[src] < 0 or fsst.size[src] == 0:
            return False, 0, False
        _select_file(fsst, cst, s)
        soff, doff, ln = a0, a1, a2
        if k == K_CLONE:
            err = dax_clone(dst, fsst, s, src, soff, doff, ln, buf)
            if err == 0:
                cm_clone(cst, s, src, soff, doff, ln)
        else:
            err = dax_dedupe(dst, fsst, s, src, soff, doff, ln, buf)
        rng_out[0] = min(doff, old)
        rng_out[1] = doff + ln if ln else -1
        return True, err, False
    _select_file(fsst, cst, s)
    if k == K_PWRITE:
        err = dax_pwrite(dst, fsst, s, a0, a1, a2 & 0xFF, buf)
        if err == 0:
            cm_pwrite(cst, s, a0, a1, a2)
        rng_out[0] = min(a0, old)
        rng_out[1] = a0 + a1
    elif k == K_TRUNCATE:
        err = dax_truncate(dst, fsst, s, a0, buf)
        if err == 0:
            cm_truncate(cst, s, a0)
        rng_out[0] = min(old, a0)
        rng_out[1] = -1
    elif k == K_PUNCH:
        err = dax_punch(dst, fsst, s, a0, a1, buf)
        if err == 0:
            cm_zero(cst, s, a0, a1, False)
        rng_out[0] = min(a0, old)
        rng_out[1] = a0 + a1
    elif k == K_ZERO:
        err = dax_zero_range(dst, fsst, s, a0, a1, a2 != 0, buf)
        if err == 0:
            cm_zero(cst, s, a0, a1, a2 == 0)
        rng_out[0] = min(a0, old)
        rng_out[1] = a0 + a1
    elif k == K_UNSHARE:
        err = dax_unshare(dst, fsst, s, a0, a1, buf)
        if err == 0:
            cm_extend_to(cst, s, a0 + a1)
        rng_out[0] = min(a0, old)
        rng_out[1] = a0 + a1
    else:
        return True, ERR_OVERFLOW, False
    return True, err, False


@njit(cache=True)
def _check_op(fsst, dst, cst, nfiles, todo, wsites, kind, s, poisoned, rng):
    """The per-op checks of ``todo`` after op ``kind`` on slot ``s``: True when clean."""
    no_data = kind == K_MREAD or kind == K_MUNMAP or kind == K_HWPOISON
    if _no_file(fsst, nfiles):
        return _check_empty(fsst, dst, cst, nfiles, todo, wsites, not no_data)
    if todo & (1 << B_ASSOC) and not _association_touched(dst):
        return False
    if todo & (1 << B_WARN) and _warnings(dst, wsites) > 0:
        return False
    if todo & (1 << B_DATA) and not no_data:
        if not _files_agree(fsst, cst, nfiles):
            return False
        if cst.exists[s]:
            size = cst.size[s]
            lo, hi = rng[0], rng[1]
            lo = max(0, lo - lo % PAGE)
            hi = size if hi < 0 else min(size, -(-hi // PAGE) * PAGE)
            if hi > lo and not _same_bytes(fsst, cst, s, lo, hi):
                return False
            if not _maps_coherent(fsst, dst, s):
                return False
    if poisoned:
        if todo & (1 << B_MF) and dst.scal[S_MF_BAD]:
            return False
        if todo & (1 << B_MFFB) and dst.scal[S_MF_FB_BAD]:
            return False
    return True


# ------------------------------------------------------------------------ the episode
@njit(cache=True)
def run_episode(fsst, dst, cst, u, cw, kinds, nfiles, episode_len, todo, max_ops, wsites, out):
    """Run one episode from a fresh filesystem; ``(status, ops applied)``.

    Parameters
    ----------
    fsst, dst, cst : FsState, DaxState, ContentState
        Reset here.
    u : ndarray of float64
        The episode's uniform draws (``rng.random(N)`` of its Generator).
    cw : ndarray of float64
        Cumulative weights of ``kinds``.
    kinds : ndarray of int64
        Op kind codes.
    nfiles, episode_len : int
    todo : int
        Bit mask of the invariants to check (:data:`NAME_BITS`).
    max_ops : int
        Stop after this many applied ops (-1: no limit).
    wsites : ndarray of int64
        Warning sites summed by the ``no_warnings`` check (indices into SITES: every
        site, as ``MemMap.warning_total``).
    out : ndarray of int64
        Scratch of at least 8.

    Returns
    -------
    status : int
        :data:`CLEAN`, :data:`EVENT` (rerun on the Python stack: something of ``todo`` may
        be violated) or :data:`FALLBACK` (a capacity overflowed or the draws ran out).
    nops : int
        Ops applied (for CLEAN: exactly the Python episode's count).
    """
    fs_reset(fsst)
    dax_reset(dst)
    content_reset(cst)
    res = dst.res
    ibuf = dst.ibuf
    rng = dst.rng
    map_slot = dst.maps[0]
    map_off = dst.maps[1]
    map_len = dst.maps[2]
    shared = dst.shared
    nops = 0
    draws = 0
    pos = 0
    teardown = False
    while True:
        if max_ops >= 0 and nops >= max_ops:
            break
        if not teardown and draws >= episode_len:
            teardown = True
            if nops > 0:
                q = todo & ((1 << B_WARN) | (1 << B_DATA) | (1 << B_REFC))
                if q & (1 << B_WARN) and _warnings(dst, wsites) > 0:
                    return EVENT, nops
                if q & (1 << B_DATA) and not _data_full(fsst, cst, nfiles):
                    return EVENT, nops
                if q & (1 << B_REFC) and not fs_refcounts_ok(fsst):
                    return EVENT, nops
        if teardown:
            s = -1
            for f in range(nfiles):
                if fsst.ino[f] >= 0:
                    s = f
                    break
            if s < 0:
                break
            out[0] = K_UNLINK
            out[1] = s
            out[2] = -1
            for j in range(3, 8):
                out[j] = 0
        else:
            draws += 1
            nm = 0
            for v in range(dst.scal[S_NVMA]):
                if dst.vm[v, 3]:
                    map_slot[nm] = dst.vm[v, 0]
                    map_off[nm] = dst.vm[v, 1] * PAGE
                    map_len[nm] = dst.vm[v, 2] * PAGE
                    nm += 1
            nsh = -1
            ssl = -1
            while True:
                r = generate_op(
                    u,
                    pos,
                    cw,
                    kinds,
                    nfiles,
                    cst.exists,
                    cst.size,
                    map_slot,
                    map_off,
                    map_len,
                    nm,
                    shared,
                    nsh,
                    ssl,
                    out,
                )
                if r <= -2:
                    ssl = -(r + 2)
                    nsh = fs_shared_pages(fsst, ssl, cst.size[ssl], shared)
                    if nsh < 0:
                        return FALLBACK, nops
                    continue
                break
            if r < 0:
                return FALLBACK, nops
            pos = r
            if out[0] < 0:
                continue
        dst.order0[:] = dst.order[:]
        dst.scal[S_NTOUCH] = 0
        ran, err, poisoned = _apply(fsst, dst, cst, out, res, ibuf, rng)
        if err == ERR_OVERFLOW or dst.scal[S_OVERFLOW] or fsst.scal[2] or cst.scal[0]:
            return FALLBACK, nops
        if not ran:
            continue
        nops += 1
        if todo & (1 << B_SIGBUS) and err == SIGBUS:
            return EVENT, nops  # a load or store inside EOF got SIGBUS (Session.check)
        if not _check_op(fsst, dst, cst, nfiles, todo, wsites, out[0], out[1], poisoned, rng):
            return EVENT, nops
        if dst.scal[S_OVERFLOW]:
            return FALLBACK, nops
    return CLEAN, nops
