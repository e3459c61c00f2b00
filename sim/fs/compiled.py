"""Compiled (numba) twin of :class:`sim.fs.FileSystem` on arrays (the hunt's episodes).

A transcription of the paths the reference :class:`sim.fs.FileSystem` takes for the calls
the hunt makes, on per-block refcounts and per-file extent arrays: same errnos (same check
order), sizes, block maps (maximal extents, HOLE/UNWRITTEN/WRITTEN), allocator choices (first
fit near the goal FileSystem computes, largest-run fallback), refcounts, free runs, file
contents and the ``remapped`` / ``newly_mapped`` lists of every :class:`~sim.fs.FsChange`.

State is one :class:`FsState` of numpy arrays (made by :func:`fs_new`):

* ``rc`` int64[nblocks]: block refcounts (0 = free);
* ``ub`` int64[nblocks] and ``data`` uint8[nblocks, 4096]: block contents as page
  descriptors (:mod:`sim.fs.compiled_pages`: ``ub[p]`` the byte of a uniform block, or -1 and
  its bytes in ``data[p]``). Only blocks a file maps WRITTEN are ever read; every path that
  makes a block readable sets all of its content first (allocation by write: the old content
  or zeros around the written bytes; CoW: a full copy; write fault: zeros), so a freed
  block's stale content (FileSystem: "keeps its content id") can never be observed and
  :func:`fs_reset` need not clear it;
* ``fr_s``, ``fr_l`` int64[free_cap]: the free runs (sorted starts, lengths; maximal), their
  number in ``scal[4]``;
* per file slot ``k`` (the hunt's path ``f{k}``): ``ino`` (-1 = no file), ``size``,
  ``reflink``, extents ``ext[k, i] = (file start, nblocks, physical start, state)`` (sorted,
  maximal) and their count ``next[k]``;
* ``scal`` int64[16]: [0] free blocks, [1] next inode number, [2] overflow flag, [3] change
  rows, [4] free runs;
* ``chg`` int64[256, 4]: the change rows of the last operation, ``(kind, slot, fblock,
  nblocks)``, kind 0 = an entry of ``FsChange.remapped``, 1 = of ``FsChange.newly_mapped``, in
  list order (remapped rows first). On an error return the rows hold what the operation had
  recorded before it failed (Python raises: no FsChange).

Return codes: 0 success, a positive Linux errno number (:data:`EINVAL` ...), or
:data:`ERR_OVERFLOW` (-1) when a capacity (extents per file, free runs, change rows, an output
array) would be exceeded or an offset computation would pass int64: ``scal[2]`` is then set,
the state is undefined and the caller must fall back to the Python filesystem.
"""

from __future__ import annotations

import errno as _errno

import numpy as np
from numba.experimental import structref

from sim.constants import BLOCK_SIZE
from sim.fs.compiled_pages import pg_copy, pg_equal, pg_fill, pg_get, pg_read
from sim.fs.compiled_state import StateType, state_class
from sim.jit import njit

__all__ = [
    "FsState",
    "fs_new",
    "fs_reset",
    "fs_create",
    "fs_unlink",
    "fs_pwrite",
    "fs_store",
    "fs_truncate",
    "fs_punch",
    "fs_zero_range",
    "fs_fallocate",
    "fs_unshare",
    "fs_clone",
    "fs_dedupe",
    "fs_iomap",
    "fs_alloc_blocks",
    "fs_cow_blocks",
    "fs_rmap",
    "fs_shared_pages",
    "fs_read",
    "fs_refcounts_ok",
    "ERR_OVERFLOW",
    "ERRNO_OF",
    "HOLE",
    "UNWRITTEN",
    "WRITTEN",
]

BS = BLOCK_SIZE
HOLE = 0
UNWRITTEN = 1
WRITTEN = 2
MAX_FILE_SIZE = (1 << 63) - 1
DEDUPE_MAX_BYTES = 1 << 30
CHG_CAP = 256
FIRST_INO = 128

#: Capacity exceeded (or int64 overflow ahead): fall back to the Python filesystem.
ERR_OVERFLOW = -1
EPERM = _errno.EPERM
ENOENT = _errno.ENOENT
EFAULT = _errno.EFAULT
EXDEV = _errno.EXDEV
EISDIR = _errno.EISDIR
EINVAL = _errno.EINVAL
ETXTBSY = _errno.ETXTBSY
EFBIG = _errno.EFBIG
ENOSPC = _errno.ENOSPC
EBADE = _errno.EBADE
EOPNOTSUPP = _errno.EOPNOTSUPP
#: FsError name -> errno number.
ERRNO_OF = {
    "EPERM": EPERM,
    "ENOENT": ENOENT,
    "EFAULT": EFAULT,
    "EXDEV": EXDEV,
    "EISDIR": EISDIR,
    "EINVAL": EINVAL,
    "ETXTBSY": ETXTBSY,
    "EFBIG": EFBIG,
    "ENOSPC": ENOSPC,
    "EBADE": EBADE,
    "EOPNOTSUPP": EOPNOTSUPP,
}

S_NFREE = 0
S_NEXTINO = 1
S_OVERFLOW = 2
S_NCHG = 3
S_NRUNS = 4
S_SU = 5  # the stripe unit in blocks (0 = none), kept by fs_reset
S_META = 6  # blocks before the first data block (metadata_blocks of the stripe unit)
#: Blocks of the root inode chunk (FileSystem: sim.fs.filesystem.INODE_CHUNK_BLOCKS).
INODE_CHUNK_BLOCKS = 8


@structref.register
class FsStateType(StateType):
    """numba type of :class:`FsState`."""


FsState = state_class(
    "FsState",
    (
        "rc",
        "ub",
        "data",
        "fr_s",
        "fr_l",
        "ino",
        "size",
        "reflink",
        "ext",
        "next",
        "scal",
        "chg",
    ),
    FsStateType,
    __name__,
    """Arrays of the compiled filesystem (see the module docstring).""",
)


def fs_new(
    nblocks: int,
    nslots: int,
    ext_cap: int = 64,
    free_cap: int = 256,
    stripe_unit_blocks: int = 0,
) -> FsState:
    """A freshly made filesystem of ``nblocks`` blocks and ``nslots`` file slots.

    Parameters
    ----------
    nblocks : int
        Device size in 4 KiB blocks (positive).
    nslots : int
        File slots (slot ``k`` is path ``f{k}``).
    ext_cap : int, optional
        Extents per file.
    free_cap : int, optional
        Free runs.
    stripe_unit_blocks : int, optional
        The stripe unit (``FileSystem(stripe_unit_blocks=)``; 0 = none).

    Returns
    -------
    FsState
    """
    if nblocks <= 0:
        raise ValueError(f"device size must be positive, got {nblocks} blocks")
    su = int(stripe_unit_blocks)
    if su < 0 or (su and su + INODE_CHUNK_BLOCKS >= nblocks):
        raise ValueError(f"stripe unit of {su} blocks on a device of {nblocks} blocks")
    i64 = np.int64
    st = FsState(
        rc=np.zeros(nblocks, i64),
        ub=np.zeros(nblocks, i64),
        data=np.zeros((nblocks, BS), np.uint8),
        fr_s=np.zeros(free_cap, i64),
        fr_l=np.zeros(free_cap, i64),
        ino=np.full(nslots, -1, i64),
        size=np.zeros(nslots, i64),
        reflink=np.zeros(nslots, i64),
        ext=np.zeros((nslots, ext_cap, 4), i64),
        next=np.zeros(nslots, i64),
        scal=np.zeros(16, i64),
        chg=np.zeros((CHG_CAP, 4), i64),
    )
    st.scal[S_SU] = su
    fs_reset(st)
    return st


# ---------------------------------------------------------------------- small helpers
@njit(cache=True)
def _ovf(st):
    st.scal[S_OVERFLOW] = 1
    return ERR_OVERFLOW


@njit(cache=True)
def _ceil_blocks(x):
    return -((-x) // BS)


@njit(cache=True)
def _min_blk_end(end, blk):
    """``min(end, blk * BS)`` without computing a product past int64."""
    if blk > end // BS:
        return end
    v = blk * BS
    return v if v < end else end


@njit(cache=True)
def _br(st, s, x):
    """bisect_right of the extent starts of slot ``s``."""
    ext = st.ext
    lo = 0
    hi = st.next[s]
    while lo < hi:
        mid = (lo + hi) >> 1
        if x < ext[s, mid, 0]:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True)
def _bl(st, s, x):
    """bisect_left of the extent starts of slot ``s``."""
    ext = st.ext
    lo = 0
    hi = st.next[s]
    while lo < hi:
        mid = (lo + hi) >> 1
        if ext[s, mid, 0] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _find(st, s, fb):
    """Index of the extent of slot ``s`` holding file block ``fb``, -1 for a hole."""
    i = _br(st, s, fb) - 1
    if i >= 0 and st.ext[s, i, 0] + st.ext[s, i, 1] > fb:
        return i
    return -1


@njit(cache=True)
def _goal_after(st, s, b):
    """Allocation goal after file block ``b - 1`` (-1 = None: a hole)."""
    i = _find(st, s, b - 1)
    if i < 0:
        return -1
    return st.ext[s, i, 2] + (b - st.ext[s, i, 0])


@njit(cache=True)
def _rows_pass(st, s, b0, b1, shared, out, fill):
    k = 0
    if b1 <= b0:
        return 0
    ne = st.next[s]
    ext = st.ext
    rc = st.rc
    if ne == 0:
        if fill:
            out[0, 0] = b0
            out[0, 1] = b1 - b0
            out[0, 2] = -1
            out[0, 3] = HOLE
            out[0, 4] = 0
        return 1
    i = _br(st, s, b0) - 1
    if i < 0 or ext[s, i, 0] + ext[s, i, 1] <= b0:
        i += 1
    pos = b0
    while i < ne:
        s_ = ext[s, i, 0]
        if s_ >= b1:
            break
        a = b0 if s_ < b0 else s_
        e = s_ + ext[s, i, 1]
        if e > b1:
            e = b1
        if a > pos:
            if fill:
                out[k, 0] = pos
                out[k, 1] = a - pos
                out[k, 2] = -1
                out[k, 3] = HOLE
                out[k, 4] = 0
            k += 1
        p = ext[s, i, 2] + a - s_
        kk = e - a
        t_ = ext[s, i, 3]
        if not shared:
            if fill:
                out[k, 0] = a
                out[k, 1] = kk
                out[k, 2] = p
                out[k, 3] = t_
                out[k, 4] = 0
            k += 1
        else:
            start = 0
            c = rc[p]
            for t in range(1, kk):
                if rc[p + t] != c:
                    if fill:
                        out[k, 0] = a + start
                        out[k, 1] = t - start
                        out[k, 2] = p + start
                        out[k, 3] = t_
                        out[k, 4] = c
                    k += 1
                    start = t
                    c = rc[p + t]
            if fill:
                out[k, 0] = a + start
                out[k, 1] = kk - start
                out[k, 2] = p + start
                out[k, 3] = t_
                out[k, 4] = c
            k += 1
        pos = e
        i += 1
    if pos < b1:
        if fill:
            out[k, 0] = pos
            out[k, 1] = b1 - pos
            out[k, 2] = -1
            out[k, 3] = HOLE
            out[k, 4] = 0
        k += 1
    return k


@njit(cache=True)
def _rows(st, s, b0, b1, shared):
    """Rows ``(f, n, p, state, count)`` of file blocks ``[b0, b1)`` (FileSystem._map_shared_rows):
    extents clipped, cut where the refcount changes if ``shared`` (else count 0), holes
    ``(f, n, -1, HOLE, 0)``."""
    dummy = np.empty((0, 5), np.int64)
    k = _rows_pass(st, s, b0, b1, shared, dummy, False)
    out = np.empty((k, 5), np.int64)
    _rows_pass(st, s, b0, b1, shared, out, True)
    return out


@njit(cache=True)
def _sort_rows(a, n):
    """Insertion sort of the first ``n`` rows of ``a`` by column 0 (unique keys)."""
    for i in range(1, n):
        j = i
        while j > 0 and a[j - 1, 0] > a[j, 0]:
            for c in range(a.shape[1]):
                t = a[j - 1, c]
                a[j - 1, c] = a[j, c]
                a[j, c] = t
            j -= 1


@njit(cache=True)
def _splice_ext(st, s, lo, hi, rows, nrows):
    """Replace the extents of slot ``s`` over ``[lo, hi)`` by ``rows[:nrows]`` ``(f, n, p,
    state)`` (sorted, inside it), merging touching compatible extents."""
    ext = st.ext
    ne = st.next[s]
    i1 = _bl(st, s, hi)
    i0 = _br(st, s, lo) - 1
    if i0 < 0 or ext[s, i0, 0] + ext[s, i0, 1] <= lo:
        i0 += 1
    if i1 < i0:
        i1 = i0
    if i1 == i0 and nrows == 0:
        return 0
    w = np.empty((nrows + 4, 4), np.int64)
    nw = 0
    a = i0
    b = i1
    if a > 0:
        a -= 1
        for c in range(4):
            w[nw, c] = ext[s, a, c]
        nw += 1
    if i1 > i0 and ext[s, i0, 0] < lo:
        w[nw, 0] = ext[s, i0, 0]
        w[nw, 1] = lo - ext[s, i0, 0]
        w[nw, 2] = ext[s, i0, 2]
        w[nw, 3] = ext[s, i0, 3]
        nw += 1
    for r in range(nrows):
        for c in range(4):
            w[nw, c] = rows[r, c]
        nw += 1
    if i1 > i0:
        j = i1 - 1
        e = ext[s, j, 0] + ext[s, j, 1]
        if e > hi:
            w[nw, 0] = hi
            w[nw, 1] = e - hi
            w[nw, 2] = ext[s, j, 2] + hi - ext[s, j, 0]
            w[nw, 3] = ext[s, j, 3]
            nw += 1
    if b < ne:
        for c in range(4):
            w[nw, c] = ext[s, b, c]
        nw += 1
        b += 1
    m = 0
    if nw > 0:
        for r in range(1, nw):
            ln = w[m, 1]
            if w[m, 0] + ln == w[r, 0] and w[m, 2] + ln == w[r, 2] and w[m, 3] == w[r, 3]:
                w[m, 1] = ln + w[r, 1]
            else:
                m += 1
                for c in range(4):
                    w[m, c] = w[r, c]
        m += 1
    newn = ne - (b - a) + m
    if newn > ext.shape[1]:
        return _ovf(st)
    tail = ne - b
    if tail > 0 and a + m != b:
        tmp = ext[s, b:ne, :].copy()
        ext[s, a + m : a + m + tail, :] = tmp
    for r in range(m):
        for c in range(4):
            ext[s, a + r, c] = w[r, c]
    st.next[s] = newn
    return 0


# ---------------------------------------------------------------------- change rows
@njit(cache=True)
def _add_franges(st, kind, slot, pf, pn, k):
    """Append FileSystem's ``_franges_rows`` of pieces ``(pf, pn)[:k]`` (sorted, touching
    neighbours merged) as change rows of ``kind``."""
    if k <= 0:
        return 0
    a = np.empty((k, 2), np.int64)
    for i in range(k):
        a[i, 0] = pf[i]
        a[i, 1] = pn[i]
    _sort_rows(a, k)
    chg = st.chg
    nc = st.scal[S_NCHG]
    cf = a[0, 0]
    cn = a[0, 1]
    for i in range(1, k + 1):
        if i < k and cf + cn == a[i, 0]:
            cn += a[i, 1]
            continue
        if nc >= chg.shape[0]:
            return _ovf(st)
        chg[nc, 0] = kind
        chg[nc, 1] = slot
        chg[nc, 2] = cf
        chg[nc, 3] = cn
        nc += 1
        if i < k:
            cf = a[i, 0]
            cn = a[i, 1]
    st.scal[S_NCHG] = nc
    return 0


@njit(cache=True)
def _finish(st, err):
    """Order the change rows as the two lists (remapped first, then newly_mapped)."""
    nc = st.scal[S_NCHG]
    if nc > 1:
        chg = st.chg
        tmp = chg[:nc, :].copy()
        j = 0
        for kind in range(2):
            for r in range(nc):
                if tmp[r, 0] == kind:
                    for c in range(4):
                        chg[j, c] = tmp[r, c]
                    j += 1
    return err


# ---------------------------------------------------------------------- space
@njit(cache=True)
def _fbr(S, n, x):
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if x < S[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True)
def _fbl(S, n, x):
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if S[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _take(st, i, s0, n):
    """Remove ``[s0, s0 + n)`` from free run ``i`` (which holds it); refcounts to 1."""
    S = st.fr_s
    L = st.fr_l
    nf = st.scal[S_NRUNS]
    rs = S[i]
    re = rs + L[i]
    if s0 == rs:
        if n == L[i]:
            for j in range(i, nf - 1):
                S[j] = S[j + 1]
                L[j] = L[j + 1]
            st.scal[S_NRUNS] = nf - 1
        else:
            S[i] = s0 + n
            L[i] -= n
    else:
        L[i] = s0 - rs
        if s0 + n < re:
            if nf >= S.shape[0]:
                return _ovf(st)
            for j in range(nf, i + 1, -1):
                S[j] = S[j - 1]
                L[j] = L[j - 1]
            S[i + 1] = s0 + n
            L[i + 1] = re - s0 - n
            st.scal[S_NRUNS] = nf + 1
    st.rc[s0 : s0 + n] = 1
    return 0


@njit(cache=True)
def _free_run(st, p, n):
    """Return ``[p, p + n)`` to the free runs, merging neighbours."""
    S = st.fr_s
    L = st.fr_l
    nf = st.scal[S_NRUNS]
    i = _fbl(S, nf, p)
    jp = i > 0 and S[i - 1] + L[i - 1] == p
    jn = i < nf and S[i] == p + n
    if jp and jn:
        L[i - 1] += n + L[i]
        for j in range(i, nf - 1):
            S[j] = S[j + 1]
            L[j] = L[j + 1]
        st.scal[S_NRUNS] = nf - 1
    elif jp:
        L[i - 1] += n
    elif jn:
        S[i] = p
        L[i] += n
    else:
        if nf >= S.shape[0]:
            return _ovf(st)
        for j in range(nf, i, -1):
            S[j] = S[j - 1]
            L[j] = L[j - 1]
        S[i] = p
        L[i] = n
        st.scal[S_NRUNS] = nf + 1
    st.scal[S_NFREE] += n
    return 0


@njit(cache=True)
def _alloc_l(st, n, goal):
    """FileSystem._alloc_l: ``n`` blocks, first fit near ``goal`` (-1 = None), largest-run
    fallback. Returns ``(err, runs (k, 2), k)``."""
    runs = np.empty((st.scal[S_NRUNS] + 3, 2), np.int64)
    k = 0
    if n > st.scal[S_NFREE]:
        return ENOSPC, runs, 0
    need = n
    S = st.fr_s
    L = st.fr_l
    nf = st.scal[S_NRUNS]
    if goal >= 0 and nf > 0:
        i = _fbr(S, nf, goal) - 1
        if i >= 0 and S[i] + L[i] > goal:
            take = min(need, S[i] + L[i] - goal)
            runs[k, 0] = goal
            runs[k, 1] = take
            k += 1
            if _take(st, i, goal, take) < 0:
                return ERR_OVERFLOW, runs, k
            need -= take
    while need > 0:
        nf = st.scal[S_NRUNS]
        i = -1
        if goal >= 0:
            for j in range(_fbl(S, nf, goal), nf):
                if L[j] >= need:
                    i = j
                    break
        if i < 0:
            for j in range(nf):
                if L[j] >= need:
                    i = j
                    break
        if i >= 0:
            take = need
        else:
            i = 0
            for j in range(1, nf):
                if L[j] > L[i]:
                    i = j
            take = L[i]
        s0 = S[i]
        if k >= runs.shape[0]:
            return _ovf(st), runs, k
        runs[k, 0] = s0
        runs[k, 1] = take
        k += 1
        if _take(st, i, s0, take) < 0:
            return ERR_OVERFLOW, runs, k
        need -= take
    st.scal[S_NFREE] -= n
    return 0, runs, k


@njit(cache=True)
def _at_eof(st, s, pf, pn, npc):
    """FileSystem._at_eof: allocating ``(pf, pn)[:npc]`` for slot ``s`` (-1 = not the data
    fork) is an allocation at EOF of at least a stripe unit (xfs_bmap_isaeof)."""
    su = st.scal[S_SU]
    if s < 0 or su <= 0 or npc != 1 or pn[0] < su:
        return False
    k = st.next[s]
    return k == 0 or pf[0] >= st.ext[s, k - 1, 0] + st.ext[s, k - 1, 1]


@njit(cache=True)
def _alloc_eof(st, s, fb, n):
    """FileSystem._alloc_eof (see there: xfs_bmap_btalloc / xfs_bmap_btalloc_at_eof):
    ``n`` blocks for file blocks ``[fb, fb + n)`` of slot ``s`` at EOF (-1: of an empty CoW
    fork). Returns ``(err, runs (k, 2), k)``."""
    su = st.scal[S_SU]
    nb = st.rc.shape[0]
    if n > st.scal[S_NFREE]:
        return ENOSPC, np.empty((0, 2), np.int64), 0
    # one aligned piece per stripe unit at most, then _alloc_l's runs
    runs = np.empty((st.scal[S_NRUNS] + 3 + n // su, 2), np.int64)
    k = 0
    S = st.fr_s
    L = st.fr_l
    goal = -1
    ne = st.next[s] if s >= 0 else 0
    if ne > 0:
        lf = st.ext[s, ne - 1, 0]
        ln = st.ext[s, ne - 1, 1]
        goal = st.ext[s, ne - 1, 2] + ln + (fb - (lf + ln))
        if goal < 0 or goal >= nb:
            goal = st.ext[s, ne - 1, 2] + ln
    while n > 0:
        gs = -1
        gn = 0
        nf = st.scal[S_NRUNS]
        if n >= su:  # a stripe unit or more: aligned; less (or no aligned space): _alloc_l
            blen = 0
            for j in range(nf):
                if L[j] > blen:
                    blen = L[j]
            minlen = min(blen, n)
            if fb > 0 and goal >= 0:
                i = _fbr(S, nf, goal) - 1
                if i >= 0 and S[i] + L[i] > goal and S[i] + L[i] - goal >= minlen:
                    gs = goal
                    gn = min(n, S[i] + L[i] - goal)
                elif su < blen and blen <= n:
                    minlen = blen - su
            elif su < blen and blen <= n + su:
                minlen = blen - su
            if gs < 0:
                best = -1
                bav = 0
                for j in range(nf):
                    a = -((-S[j]) // su) * su
                    av = S[j] + L[j] - a
                    if av >= n:
                        gs = a
                        gn = n
                        break
                    if av >= max(minlen, 1) and av > bav:
                        best = a
                        bav = av
                if gs < 0 and best >= 0:
                    gs = best
                    gn = bav
        if gs < 0:
            err, r2, k2 = _alloc_l(st, n, goal)
            if err != 0:
                return err, runs, k
            for j in range(k2):
                if k >= runs.shape[0]:
                    return _ovf(st), runs, k
                runs[k, 0] = r2[j, 0]
                runs[k, 1] = r2[j, 1]
                k += 1
            return 0, runs, k
        i = _fbr(S, nf, gs) - 1
        if _take(st, i, gs, gn) < 0:
            return ERR_OVERFLOW, runs, k
        st.scal[S_NFREE] -= gn
        if k >= runs.shape[0]:
            return _ovf(st), runs, k
        runs[k, 0] = gs
        runs[k, 1] = gn
        k += 1
        fb += gn
        n -= gn
        goal = gs + gn
    return 0, runs, k


@njit(cache=True)
def _cow_aligned(st, pf, pn, npc, total):
    """FileSystem._cow_aligned: a CoW of one file range of at least a stripe unit."""
    su = st.scal[S_SU]
    if su <= 0 or total < su:
        return False
    end = pf[0]
    for i in range(npc):
        if pf[i] != end:
            return False
        end = pf[i] + pn[i]
    return True


@njit(cache=True)
def _alloc_rows(st, pf, pn, npc, goal, s, cow):
    """FileSystem._alloc_rows: file pieces ``(pf, pn)[:npc]`` -> ``(err, out (k, 3), k)``
    rows ``(f, n, p)``; ``s``: the slot of a data-fork allocation, ``cow``: a CoW
    allocation (stripe alignment, :func:`_alloc_eof`); -1 and False for none."""
    total = 0
    for i in range(npc):
        total += pn[i]
    if total == 0:
        return 0, np.empty((0, 3), np.int64), 0
    if cow and _cow_aligned(st, pf, pn, npc, total):
        err, runs, nr = _alloc_eof(st, -1, pf[0], total)
    elif not cow and _at_eof(st, s, pf, pn, npc):
        err, runs, nr = _alloc_eof(st, s, pf[0], total)
    else:
        err, runs, nr = _alloc_l(st, total, goal)
    if err != 0:
        return err, np.empty((0, 3), np.int64), 0
    out = np.empty((npc + nr + 1, 3), np.int64)
    if nr == 1 and npc == 1:
        out[0, 0] = pf[0]
        out[0, 1] = total
        out[0, 2] = runs[0, 0]
        return 0, out, 1
    k = 0
    ri = 0
    rs = runs[0, 0]
    rn = runs[0, 1]
    for q in range(npc):
        f = pf[q]
        n = pn[q]
        while n > 0:
            take = min(n, rn)
            out[k, 0] = f
            out[k, 1] = take
            out[k, 2] = rs
            k += 1
            f += take
            n -= take
            rs += take
            rn -= take
            if rn == 0 and ri + 1 < nr:
                ri += 1
                rs = runs[ri, 0]
                rn = runs[ri, 1]
    return 0, out, k


@njit(cache=True)
def _refs(st, ps, ns, k, delta):
    """Add ``delta`` (+1 or -1) to the refcount of every block of the ranges ``(ps, ns)[:k]``
    (may repeat); blocks reaching 0 are freed."""
    rc = st.rc
    if delta > 0:
        for r in range(k):
            for b in range(ps[r], ps[r] + ns[r]):
                rc[b] += delta
        return 0
    for r in range(k):
        rs = -1
        rl = 0
        for b in range(ps[r], ps[r] + ns[r]):
            rc[b] += delta
            if rc[b] == 0:
                if rs >= 0 and rs + rl == b:
                    rl += 1
                else:
                    if rs >= 0:
                        if _free_run(st, rs, rl) < 0:
                            return ERR_OVERFLOW
                    rs = b
                    rl = 1
        if rs >= 0:
            if _free_run(st, rs, rl) < 0:
                return ERR_OVERFLOW
    return 0


# ---------------------------------------------------------------------- write paths
@njit(cache=True)
def _write(st, s, off, length, byte, extend):
    """FileSystem._write_rows (store_only False): allocate holes, convert unwritten, CoW
    shared blocks (copy-around), store into private blocks."""
    if length <= 0:
        return 0
    if off > MAX_FILE_SIZE - length:
        return _ovf(st)
    end = off + length
    b0 = off // BS
    b1 = _ceil_blocks(end)
    rows = _rows(st, s, b0, b1, True)
    nr = rows.shape[0]
    kept = np.empty((nr, 3), np.int64)
    nk = 0
    npf = np.empty(nr, np.int64)
    npn = np.empty(nr, np.int64)
    nnp = 0
    any_new = False
    any_shared = False
    any_unw = False
    any_hole = False
    for r in range(nr):
        stt = rows[r, 3]
        if stt == WRITTEN and rows[r, 4] <= 1 or stt == UNWRITTEN:
            kept[nk, 0] = rows[r, 0]
            kept[nk, 1] = rows[r, 1]
            kept[nk, 2] = rows[r, 2]
            nk += 1
            if stt == UNWRITTEN:
                any_unw = True
        else:
            any_new = True
            if stt == WRITTEN:
                any_shared = True
            else:
                any_hole = True
            npf[nnp] = rows[r, 0]
            npn[nnp] = rows[r, 1]
            nnp += 1
    goal = -1
    if any_new:
        if b0 > 0:
            goal = _goal_after(st, s, b0)
        if goal < 0 and nk > 0:
            goal = kept[0, 2]
    if nnp > 0:
        # a CoW with no hole: stripe aligned as a CoW-fork allocation (FileSystem._write_rows)
        err, new, nnew = _alloc_rows(st, npf, npn, nnp, goal, s, any_shared and not any_hole)
        if err != 0:
            return err
        out = np.empty((nk + nnew, 4), np.int64)
        for r in range(nk):
            out[r, 0] = kept[r, 0]
            out[r, 1] = kept[r, 1]
            out[r, 2] = kept[r, 2]
        for r in range(nnew):
            out[nk + r, 0] = new[r, 0]
            out[nk + r, 1] = new[r, 1]
            out[nk + r, 2] = new[r, 2]
        nout = nk + nnew
        _sort_rows(out, nout)
    else:
        out = np.empty((nk, 4), np.int64)
        for r in range(nk):
            out[r, 0] = kept[r, 0]
            out[r, 1] = kept[r, 1]
            out[r, 2] = kept[r, 2]
        nout = nk
    for r in range(nout):
        out[r, 3] = WRITTEN
    # content: partial blocks start from the old block's content (zeros if not written)
    data = st.data
    ub = st.ub
    head_a = off - b0 * BS
    tail_e = end - (b1 - 1) * BS
    p0 = head_a > 0 or (b1 - b0 == 1 and tail_e < BS)
    p1 = tail_e < BS
    for w in range(2):
        if w == 0:
            if not p0:
                continue
            fb = b0
        else:
            if not p1 or (b1 - 1 == b0 and p0):
                continue
            fb = b1 - 1
        src = -1
        for r in range(nr):
            if rows[r, 0] <= fb < rows[r, 0] + rows[r, 1]:
                if rows[r, 3] == WRITTEN:
                    src = rows[r, 2] + fb - rows[r, 0]
                break
        dst = -1
        for r in range(nout):
            if out[r, 0] <= fb < out[r, 0] + out[r, 1]:
                dst = out[r, 2] + fb - out[r, 0]
                break
        if src < 0:
            ub[dst] = 0
        elif src != dst:
            pg_copy(ub, data, dst, ub, data, src)
    bv = byte & 0xFF
    for r in range(nout):
        of = out[r, 0]
        lo = of if of > b0 else b0
        hi = out[r, 0] + out[r, 1]
        if hi > b1:
            hi = b1
        for fb in range(lo, hi):
            base = fb * BS
            a = off - base
            if a < 0:
                a = 0
            e = end - base
            if e > BS:
                e = BS
            pg_fill(ub, data, out[r, 2] + fb - of, a, e, bv)
    if any_new or any_unw:
        err = _splice_ext(st, s, b0, b1, out, nout)
        if err != 0:
            return err
        pf = np.empty(nr, np.int64)
        pn = np.empty(nr, np.int64)
        k = 0
        for r in range(nr):
            if rows[r, 3] != WRITTEN:
                pf[k] = rows[r, 0]
                pn[k] = rows[r, 1]
                k += 1
        err = _add_franges(st, 1, s, pf, pn, k)
        if err != 0:
            return err
    if any_shared:
        pf = np.empty(nr, np.int64)
        pn = np.empty(nr, np.int64)
        pp = np.empty(nr, np.int64)
        k = 0
        for r in range(nr):
            if rows[r, 3] == WRITTEN and rows[r, 4] > 1:
                pf[k] = rows[r, 0]
                pn[k] = rows[r, 1]
                pp[k] = rows[r, 2]
                k += 1
        err = _add_franges(st, 0, s, pf, pn, k)
        if err != 0:
            return err
        err = _refs(st, pp, pn, k, -1)
        if err != 0:
            return err
    if extend and end > st.size[s]:
        st.size[s] = end
    return 0


@njit(cache=True)
def _zero_posteof(st, s, upto):
    """FileSystem._zero_posteof: zero the old EOF block past EOF (if not already zero)."""
    sz = st.size[s]
    if sz % BS == 0:
        return 0
    b = sz // BS
    i = _find(st, s, b)
    if i < 0 or st.ext[s, i, 3] != WRITTEN:
        return 0
    p0 = st.ext[s, i, 2] + b - st.ext[s, i, 0]
    stop = _min_blk_end(upto, b + 1)
    if stop <= sz:
        return 0
    a = sz - b * BS
    e = stop - b * BS
    allz = True
    if st.ub[p0] != 0:
        for j in range(a, e):
            if pg_get(st.ub, st.data, p0, j) != 0:
                allz = False
                break
    if allz:
        return 0
    return _write(st, s, sz, stop - sz, 0, False)


@njit(cache=True)
def _zero_bytes(st, s, off, length):
    """FileSystem._zero_bytes: zero written blocks only, CoW if shared."""
    if length <= 0:
        return 0
    if off > MAX_FILE_SIZE - length:
        return _ovf(st)
    end = off + length
    rows = _rows(st, s, off // BS, _ceil_blocks(end), False)
    for r in range(rows.shape[0]):
        if rows[r, 3] == WRITTEN:
            f = rows[r, 0]
            a = f * BS
            if a < off:
                a = off
            e = _min_blk_end(end, f + rows[r, 1])
            if e > a:
                err = _write(st, s, a, e - a, 0, False)
                if err != 0:
                    return err
    return 0


@njit(cache=True)
def _unmap(st, s, b0, b1, to_end):
    """FileSystem._unmap: remove mappings of ``[b0, b1)`` (``to_end``: to the last
    extent's end); drop references."""
    ne = st.next[s]
    if ne == 0:
        return 0
    if to_end:
        b1 = st.ext[s, ne - 1, 0] + st.ext[s, ne - 1, 1]
    if b1 <= b0:
        return 0
    rows = _rows(st, s, b0, b1, False)
    nr = rows.shape[0]
    pf = np.empty(nr, np.int64)
    pn = np.empty(nr, np.int64)
    pp = np.empty(nr, np.int64)
    k = 0
    for r in range(nr):
        if rows[r, 2] >= 0:
            pf[k] = rows[r, 0]
            pn[k] = rows[r, 1]
            pp[k] = rows[r, 2]
            k += 1
    if k == 0:
        return 0
    err = _splice_ext(st, s, b0, b1, rows, 0)
    if err != 0:
        return err
    err = _add_franges(st, 0, s, pf, pn, k)
    if err != 0:
        return err
    return _refs(st, pp, pn, k, -1)


@njit(cache=True)
def _alloc_unwritten(st, s, b0, b1):
    """xfs_alloc_file_space: unwritten extents in the holes of ``[b0, b1)``."""
    rows = _rows(st, s, b0, b1, False)
    nr = rows.shape[0]
    hf = np.empty(nr, np.int64)
    hn = np.empty(nr, np.int64)
    nh = 0
    for r in range(nr):
        if rows[r, 3] == HOLE:
            hf[nh] = rows[r, 0]
            hn[nh] = rows[r, 1]
            nh += 1
    if nh == 0:
        return 0
    goal = -1
    if b0 > 0:
        goal = _goal_after(st, s, b0)
    if goal < 0:
        for r in range(nr):
            if rows[r, 2] >= 0:
                goal = rows[r, 2]
                break
    err, new, nnew = _alloc_rows(st, hf, hn, nh, goal, s, False)
    if err != 0:
        return err
    out = np.empty((nr + nnew, 4), np.int64)
    k = 0
    for r in range(nr):
        if rows[r, 3] != HOLE and rows[r, 2] >= 0:
            for c in range(4):
                out[k, c] = rows[r, c]
            k += 1
    for r in range(nnew):
        out[k, 0] = new[r, 0]
        out[k, 1] = new[r, 1]
        out[k, 2] = new[r, 2]
        out[k, 3] = UNWRITTEN
        k += 1
    _sort_rows(out, k)
    return _splice_ext(st, s, b0, b1, out, k)


@njit(cache=True)
def _cow_blocks(st, s, fblock, nblocks):
    """FileSystem._cow_blocks_rows: shared written blocks get private copies."""
    rows = _rows(st, s, fblock, fblock + nblocks, True)
    nr = rows.shape[0]
    sf = np.empty(nr, np.int64)
    sn = np.empty(nr, np.int64)
    sp = np.empty(nr, np.int64)
    k = 0
    for r in range(nr):
        if rows[r, 3] == WRITTEN and rows[r, 4] > 1:
            sf[k] = rows[r, 0]
            sn[k] = rows[r, 1]
            sp[k] = rows[r, 2]
            k += 1
    if k == 0:
        return 0
    err, new, nnew = _alloc_rows(st, sf, sn, k, -1, -1, True)
    if err != 0:
        return err
    data = st.data
    for q in range(nnew):
        for t in range(new[q, 1]):
            fb = new[q, 0] + t
            for r in range(k):
                if sf[r] <= fb < sf[r] + sn[r]:
                    pg_copy(st.ub, data, new[q, 2] + t, st.ub, data, sp[r] + fb - sf[r])
                    break
    out = np.empty((nr + nnew, 4), np.int64)
    m = 0
    for r in range(nr):
        if rows[r, 2] >= 0 and not (rows[r, 3] == WRITTEN and rows[r, 4] > 1):
            for c in range(4):
                out[m, c] = rows[r, c]
            m += 1
    for q in range(nnew):
        out[m, 0] = new[q, 0]
        out[m, 1] = new[q, 1]
        out[m, 2] = new[q, 2]
        out[m, 3] = WRITTEN
        m += 1
    _sort_rows(out, m)
    err = _splice_ext(st, s, fblock, fblock + nblocks, out, m)
    if err != 0:
        return err
    err = _add_franges(st, 0, s, sf, sn, k)
    if err != 0:
        return err
    return _refs(st, sp, sn, k, -1)


@njit(cache=True)
def _alloc_blocks(st, s, fblock, nblocks):
    """FileSystem._alloc_blocks_rows: zeroed written blocks for holes, unwritten converted."""
    rows = _rows(st, s, fblock, fblock + nblocks, False)
    nr = rows.shape[0]
    hf = np.empty(nr, np.int64)
    hn = np.empty(nr, np.int64)
    nh = 0
    nu = 0
    for r in range(nr):
        if rows[r, 3] == HOLE:
            hf[nh] = rows[r, 0]
            hn[nh] = rows[r, 1]
            nh += 1
        elif rows[r, 3] == UNWRITTEN:
            nu += 1
    if nh == 0 and nu == 0:
        return 0
    goal = -1
    if fblock > 0:
        goal = _goal_after(st, s, fblock)
    err, new, nnew = _alloc_rows(st, hf, hn, nh, goal, s, False)
    if err != 0:
        return err
    out = np.empty((nr + nnew, 4), np.int64)
    m = 0
    for r in range(nr):
        if rows[r, 3] != HOLE and rows[r, 2] >= 0:
            out[m, 0] = rows[r, 0]
            out[m, 1] = rows[r, 1]
            out[m, 2] = rows[r, 2]
            out[m, 3] = WRITTEN
            m += 1
    for q in range(nnew):
        out[m, 0] = new[q, 0]
        out[m, 1] = new[q, 1]
        out[m, 2] = new[q, 2]
        out[m, 3] = WRITTEN
        m += 1
    _sort_rows(out, m)
    err = _splice_ext(st, s, fblock, fblock + nblocks, out, m)
    if err != 0:
        return err
    for q in range(nnew):
        st.ub[new[q, 2] : new[q, 2] + new[q, 1]] = 0
    pf = np.empty(nr, np.int64)
    pn = np.empty(nr, np.int64)
    k = 0
    for r in range(nr):
        if rows[r, 3] == UNWRITTEN:
            st.ub[rows[r, 2] : rows[r, 2] + rows[r, 1]] = 0
        if rows[r, 3] != WRITTEN:
            pf[k] = rows[r, 0]
            pn[k] = rows[r, 1]
            k += 1
    return _add_franges(st, 1, s, pf, pn, k)


@njit(cache=True)
def _free_file_space(st, s, off, length):
    """xfs_free_file_space: unmap whole blocks, zero partial edges inside EOF."""
    b0 = _ceil_blocks(off)
    b1 = (off + length) // BS
    if b1 > b0:
        err = _unmap(st, s, b0, b1, False)
        if err != 0:
            return err
    if off >= st.size[s]:
        return 0
    ln = min(length, st.size[s] - off)
    return _zero_bytes(st, s, off, ln)


@njit(cache=True)
def _falloc_checks(off, length):
    if off < 0 or length <= 0:
        return EINVAL
    if off > MAX_FILE_SIZE - length:
        return EFBIG
    return 0


@njit(cache=True)
def _falloc_setsize(st, s, new_end, keep_size):
    if not keep_size and new_end > st.size[s]:
        err = _zero_posteof(st, s, new_end)
        if err != 0:
            return err
        st.size[s] = new_end
    return 0


# ---------------------------------------------------------------------- remap
@njit(cache=True)
def _remap_blocks(st, ss, sb, ds, db, nb):
    """FileSystem._remap_blocks_rows: share written source extents into dest; source holes
    and unwritten extents punch dest (unless both unwritten); same mapping = nothing."""
    srows = _rows(st, ss, sb, sb + nb, False)
    drows = _rows(st, ds, db, db + nb, False)
    ns = srows.shape[0]
    nd = drows.shape[0]
    pc = np.empty((ns + nd + 1, 6), np.int64)
    k = 0
    if nd == 1 and drows[0, 2] < 0:
        for r in range(ns):
            pc[k, 0] = srows[r, 0] - sb + db
            pc[k, 1] = srows[r, 1]
            pc[k, 2] = srows[r, 2]
            pc[k, 3] = srows[r, 3]
            pc[k, 4] = -1
            pc[k, 5] = HOLE
            k += 1
    else:
        for r in range(ns):
            qf = srows[r, 0] - sb + db
            qe = qf + srows[r, 1]
            p = srows[r, 2]
            for q in range(nd):
                df = drows[q, 0]
                s_ = df if df > qf else qf
                e_ = df + drows[q, 1]
                if e_ > qe:
                    e_ = qe
                if e_ > s_:
                    if k >= pc.shape[0]:
                        return _ovf(st)
                    dp = drows[q, 2]
                    pc[k, 0] = s_
                    pc[k, 1] = e_ - s_
                    pc[k, 2] = p + (s_ - qf) if p >= 0 else -1
                    pc[k, 3] = srows[r, 3]
                    pc[k, 4] = dp + (s_ - df) if dp >= 0 else -1
                    pc[k, 5] = drows[q, 3]
                    k += 1
    act = np.zeros(k, np.bool_)
    na = 0
    first = -1
    last = -1
    for r in range(k):
        sp_ = pc[r, 2]
        if (sp_ >= 0 and sp_ == pc[r, 4]) or (pc[r, 3] == UNWRITTEN and pc[r, 5] == UNWRITTEN):
            continue
        act[r] = True
        na += 1
        if first < 0:
            first = r
        last = r
    if na == 0:
        return 0
    af = np.empty(k, np.int64)
    an = np.empty(k, np.int64)
    ap = np.empty(k, np.int64)
    m = 0
    for r in range(k):
        if act[r] and pc[r, 3] == WRITTEN:
            af[m] = pc[r, 0]
            an[m] = pc[r, 1]
            ap[m] = pc[r, 2]
            m += 1
    if m > 0:
        err = _refs(st, ap, an, m, 1)
        if err != 0:
            return err
    m2 = 0
    for r in range(k):
        if act[r] and pc[r, 3] == WRITTEN and pc[r, 4] < 0:
            af[m2] = pc[r, 0]
            an[m2] = pc[r, 1]
            m2 += 1
    err = _add_franges(st, 1, ds, af, an, m2)
    if err != 0:
        return err
    m2 = 0
    for r in range(k):
        if act[r] and pc[r, 4] >= 0:
            af[m2] = pc[r, 0]
            an[m2] = pc[r, 1]
            ap[m2] = pc[r, 4]
            m2 += 1
    if m2 > 0:
        err = _refs(st, ap, an, m2, -1)
        if err != 0:
            return err
        err = _add_franges(st, 0, ds, af, an, m2)
        if err != 0:
            return err
    lo = pc[first, 0]
    hi = pc[last, 0] + pc[last, 1]
    out = np.empty((k, 4), np.int64)
    m = 0
    for r in range(k):
        if not act[r] and pc[r, 4] >= 0 and lo <= pc[r, 0] < hi:
            out[m, 0] = pc[r, 0]
            out[m, 1] = pc[r, 1]
            out[m, 2] = pc[r, 4]
            out[m, 3] = pc[r, 5]
            m += 1
    for r in range(k):
        if act[r] and pc[r, 3] == WRITTEN:
            out[m, 0] = pc[r, 0]
            out[m, 1] = pc[r, 1]
            out[m, 2] = pc[r, 2]
            out[m, 3] = WRITTEN
            m += 1
    _sort_rows(out, m)
    return _splice_ext(st, ds, lo, hi, out, m)


@njit(cache=True)
def _remap_checks(st, ss, pos_in, ds, pos_out, length, dedup):
    """generic_remap_file_range_prep checks: ``(err, length)`` (0 = nothing to do)."""
    if pos_in < 0 or pos_out < 0 or length < 0:
        return EINVAL, 0
    if length == 0:
        isize = st.size[ss]
        if dedup or pos_in == isize:
            return 0, 0
        if pos_in > isize:
            return EINVAL, 0
        length = isize - pos_in
    if pos_in % BS or pos_out % BS:
        return EINVAL, 0
    if pos_in > MAX_FILE_SIZE - length or pos_out > MAX_FILE_SIZE - length:
        return EINVAL, 0
    size_in = st.size[ss]
    size_out = st.size[ds]
    if dedup and (
        pos_in >= size_in
        or length > size_in - pos_in
        or pos_out >= size_out
        or length > size_out - pos_out
    ):
        return EINVAL, 0
    if pos_in >= size_in:
        return EINVAL, 0
    count = min(length, size_in - pos_in)
    if pos_in + count == size_in and (not dedup or pos_out + count == size_out):
        bcb = _ceil_blocks(size_in) - pos_in // BS  # bcount in blocks (pos_in aligned)
    else:
        if count % BS:
            count -= count % BS
        bcb = count // BS
    if ss == ds:
        ib = pos_in // BS
        ob = pos_out // BS
        if ob + bcb > ib and ob < ib + bcb:
            return EINVAL, 0
    if count != length and not dedup:
        return EINVAL, 0
    return 0, count


@njit(cache=True)
def _check_len(st, ds, pos_out, length, dedup):
    """generic_remap_check_len: ``(err, length)``."""
    if length % BS == 0:
        return 0, length
    new_len = length
    if pos_out + length < st.size[ds]:
        new_len = length - length % BS
    if new_len == length:
        return 0, length
    if dedup:
        return 0, new_len
    return EINVAL, 0


@njit(cache=True)
def _wblock(st, s, fb):
    """Physical block of file block ``fb`` if WRITTEN, else -1 (reads as zeros)."""
    i = _find(st, s, fb)
    if i < 0 or st.ext[s, i, 3] != WRITTEN:
        return -1
    return st.ext[s, i, 2] + fb - st.ext[s, i, 0]


@njit(cache=True)
def _compare(st, s1, o1, s2, o2, ln):
    """Whether the block-aligned ranges read the same bytes (both inside EOF)."""
    data = st.data
    b1 = o1 // BS
    b2 = o2 // BS
    nb = _ceil_blocks(ln)
    for i in range(nb):
        n = ln - i * BS
        if n > BS:
            n = BS
        pa = _wblock(st, s1, b1 + i)
        pb = _wblock(st, s2, b2 + i)
        if pa < 0 and pb < 0:
            continue
        if not pg_equal(st.ub, data, pa, st.ub, data, pb, 0, n):
            return False
    return True


# ---------------------------------------------------------------------- public calls
@njit(cache=True)
def fs_reset(st):
    """Back to a fresh mkfs: every block free but the metadata of a stripe-unit
    filesystem (FileSystem: ``metadata_blocks``, refcount 1), no file, next inode 128
    (``data`` kept; the stripe unit kept).

    Parameters
    ----------
    st : FsState
    """
    su = st.scal[S_SU]
    meta = su + INODE_CHUNK_BLOCKS if su > 0 else 0
    st.rc[:] = 0
    st.rc[:meta] = 1
    n = st.rc.shape[0]
    st.fr_s[0] = meta
    st.fr_l[0] = n - meta
    st.scal[:] = 0
    st.scal[S_SU] = su
    st.scal[S_META] = meta
    st.scal[S_NFREE] = n - meta
    st.scal[S_NEXTINO] = FIRST_INO
    st.scal[S_NRUNS] = 1
    st.ino[:] = -1
    st.size[:] = 0
    st.reflink[:] = 0
    st.next[:] = 0


@njit(cache=True)
def fs_create(st, slot):
    """open(O_CREAT) of ``f{slot}``.

    Parameters
    ----------
    st : FsState
    slot : int

    Returns
    -------
    int
        The inode number (-1: slot out of range).
    """
    st.scal[S_NCHG] = 0
    if slot < 0 or slot >= st.ino.shape[0]:
        return _ovf(st)
    if st.ino[slot] < 0:
        st.ino[slot] = st.scal[S_NEXTINO]
        st.scal[S_NEXTINO] += 1
        st.size[slot] = 0
        st.reflink[slot] = 0
        st.next[slot] = 0
    return st.ino[slot]


@njit(cache=True)
def _has(st, slot):
    return 0 <= slot < st.ino.shape[0] and st.ino[slot] >= 0


@njit(cache=True)
def fs_unlink(st, slot):
    """unlink(2) of ``f{slot}``: drop every block reference, remove the file.

    The reference's unlink of an inode nothing else references (``FileSystem.unlink`` with
    no :meth:`~sim.fs.FileSystem.hold` left: ``iput`` -> ``evict`` -> ``xfs_inactive`` at
    once). The hunt unmaps and closes a file before it unlinks it, so no orphan (an unlinked
    inode still open or mapped) arises in an episode and none is kept here.

    Parameters
    ----------
    st : FsState
    slot : int

    Returns
    -------
    int
        0, ENOENT or -1 (overflow).
    """
    st.scal[S_NCHG] = 0
    if not _has(st, slot):
        return ENOENT
    err = _unmap(st, slot, 0, 0, True)
    if err != 0:
        return _finish(st, err)
    st.ino[slot] = -1
    st.size[slot] = 0
    st.reflink[slot] = 0
    st.next[slot] = 0
    return _finish(st, 0)


@njit(cache=True)
def fs_pwrite(st, slot, off, length, byte):
    """write(2) of ``length`` bytes of ``byte`` at ``off`` (FileSystem.pwrite).

    Parameters
    ----------
    st : FsState
    slot, off, length, byte : int

    Returns
    -------
    int
        0 or an errno (ENOENT, EINVAL, EFBIG, ENOSPC), -1 overflow.
    """
    st.scal[S_NCHG] = 0
    if not _has(st, slot):
        return ENOENT
    if off < 0 or length < 0:
        return EINVAL
    if off > MAX_FILE_SIZE - length:
        return EFBIG
    if length > 0:
        if off > st.size[slot]:
            err = _zero_posteof(st, slot, off)
            if err != 0:
                return _finish(st, err)
        err = _write(st, slot, off, length, byte & 0xFF, True)
        if err != 0:
            return _finish(st, err)
    return _finish(st, 0)


@njit(cache=True)
def fs_store(st, slot, off, length, byte):
    """Store through a writable mapping (FileSystem.store): private written blocks only.

    Parameters
    ----------
    st : FsState
    slot, off, length, byte : int

    Returns
    -------
    int
        0, ENOENT or EFAULT (a block not private and written).
    """
    st.scal[S_NCHG] = 0
    if not _has(st, slot):
        return ENOENT
    if length <= 0:
        return 0
    if off > MAX_FILE_SIZE - length:
        return EFAULT  # no block that far is mapped
    end = off + length
    b0 = off // BS
    b1 = _ceil_blocks(end)
    rows = _rows(st, slot, b0, b1, True)
    for r in range(rows.shape[0]):
        if rows[r, 3] != WRITTEN or rows[r, 4] > 1:
            return EFAULT
    bv = byte & 0xFF
    data = st.data
    for r in range(rows.shape[0]):
        f = rows[r, 0]
        for fb in range(f, f + rows[r, 1]):
            base = fb * BS
            a = off - base
            if a < 0:
                a = 0
            e = end - base
            if e > BS:
                e = BS
            pg_fill(st.ub, data, rows[r, 2] + fb - f, a, e, bv)
    return 0


@njit(cache=True)
def fs_truncate(st, slot, size):
    """ftruncate (FileSystem.truncate).

    Parameters
    ----------
    st : FsState
    slot, size : int

    Returns
    -------
    int
        0 or an errno (ENOENT, EINVAL, ENOSPC), -1 overflow.
    """
    st.scal[S_NCHG] = 0
    if not _has(st, slot):
        return ENOENT
    if size < 0:
        return EINVAL
    old = st.size[slot]
    if size > old:
        err = _zero_posteof(st, slot, size)
        if err != 0:
            return _finish(st, err)
        st.size[slot] = size
    else:
        if size == 0 and old == 0 and st.next[slot] == 0:
            return _finish(st, 0)
        if size % BS and size != old:
            if size > MAX_FILE_SIZE - BS:
                return _ovf(st)
            err = _zero_bytes(st, slot, size, BS - size % BS)
            if err != 0:
                return _finish(st, err)
        err = _unmap(st, slot, _ceil_blocks(size), 0, True)
        if err != 0:
            return _finish(st, err)
        st.size[slot] = size
    return _finish(st, 0)


@njit(cache=True)
def fs_punch(st, slot, off, length):
    """FALLOC_FL_PUNCH_HOLE | KEEP_SIZE.

    Parameters
    ----------
    st : FsState
    slot, off, length : int

    Returns
    -------
    int
        0 or an errno (ENOENT, EINVAL, EFBIG, ENOSPC), -1 overflow.
    """
    st.scal[S_NCHG] = 0
    if not _has(st, slot):
        return ENOENT
    err = _falloc_checks(off, length)
    if err != 0:
        return err
    return _finish(st, _free_file_space(st, slot, off, length))


@njit(cache=True)
def fs_zero_range(st, slot, off, length, keep_size):
    """FALLOC_FL_ZERO_RANGE (``keep_size``: with KEEP_SIZE).

    Parameters
    ----------
    st : FsState
    slot, off, length : int
    keep_size : int or bool

    Returns
    -------
    int
        0 or an errno (ENOENT, EINVAL, EFBIG, ENOSPC), -1 overflow.
    """
    st.scal[S_NCHG] = 0
    if not _has(st, slot):
        return ENOENT
    err = _falloc_checks(off, length)
    if err != 0:
        return err
    err = _free_file_space(st, slot, off, length)
    if err != 0:
        return _finish(st, err)
    err = _alloc_unwritten(st, slot, off // BS, _ceil_blocks(off + length))
    if err != 0:
        return _finish(st, err)
    return _finish(st, _falloc_setsize(st, slot, off + length, keep_size != 0))


@njit(cache=True)
def fs_fallocate(st, slot, off, length, keep_size):
    """fallocate mode 0 (``keep_size``: with FALLOC_FL_KEEP_SIZE): unwritten blocks in the
    holes of the range only, then the size (FileSystem.fallocate). The hunt draws no
    fallocate; it completes the twin's set of FileSystem's mutating calls.

    Parameters
    ----------
    st : FsState
    slot, off, length : int
    keep_size : int or bool

    Returns
    -------
    int
        0 or an errno (ENOENT, EINVAL, EFBIG, ENOSPC), -1 overflow.
    """
    st.scal[S_NCHG] = 0
    if not _has(st, slot):
        return ENOENT
    err = _falloc_checks(off, length)
    if err != 0:
        return err
    err = _alloc_unwritten(st, slot, off // BS, _ceil_blocks(off + length))
    if err != 0:
        return _finish(st, err)
    return _finish(st, _falloc_setsize(st, slot, off + length, keep_size != 0))


@njit(cache=True)
def fs_unshare(st, slot, off, length):
    """FALLOC_FL_UNSHARE_RANGE without KEEP_SIZE (as DaxFS calls it).

    Parameters
    ----------
    st : FsState
    slot, off, length : int

    Returns
    -------
    int
        0 or an errno (ENOENT, EINVAL, EFBIG, ENOSPC), -1 overflow.
    """
    st.scal[S_NCHG] = 0
    if not _has(st, slot):
        return ENOENT
    err = _falloc_checks(off, length)
    if err != 0:
        return err
    size = st.size[slot]
    if st.reflink[slot] != 0 and off < size:
        e = min(off + length, size)
        fb = off // BS
        err = _cow_blocks(st, slot, fb, _ceil_blocks(e) - fb)
        if err != 0:
            return _finish(st, err)
    err = _alloc_unwritten(st, slot, off // BS, _ceil_blocks(off + length))
    if err != 0:
        return _finish(st, err)
    return _finish(st, _falloc_setsize(st, slot, off + length, False))


@njit(cache=True)
def fs_clone(st, dst_slot, src_slot, src_off, dst_off, length):
    """FICLONERANGE (``length`` 0 = to the source's EOF), FileSystem.clone.

    Parameters
    ----------
    st : FsState
    dst_slot, src_slot, src_off, dst_off, length : int

    Returns
    -------
    int
        0 or an errno (ENOENT, EINVAL, ENOSPC), -1 overflow.
    """
    st.scal[S_NCHG] = 0
    if not _has(st, src_slot) or not _has(st, dst_slot):
        return ENOENT
    err, ln = _remap_checks(st, src_slot, src_off, dst_slot, dst_off, length, False)
    if err != 0:
        return err
    if ln:
        err, ln = _check_len(st, dst_slot, dst_off, ln, False)
        if err != 0:
            return err
    if ln:
        if dst_off > st.size[dst_slot]:
            err = _zero_posteof(st, dst_slot, dst_off)
            if err != 0:
                return _finish(st, err)
        err = _remap_blocks(st, src_slot, src_off // BS, dst_slot, dst_off // BS, _ceil_blocks(ln))
        if err != 0:
            return _finish(st, err)
        st.reflink[src_slot] = 1
        st.reflink[dst_slot] = 1
        if dst_off + ln > st.size[dst_slot]:
            st.size[dst_slot] = dst_off + ln
    return _finish(st, 0)


@njit(cache=True)
def fs_dedupe(st, dst_slot, src_slot, src_off, dst_off, length):
    """FIDEDUPERANGE of one destination (FileSystem.dedupe): EBADE when the bytes differ.

    Parameters
    ----------
    st : FsState
    dst_slot, src_slot, src_off, dst_off, length : int

    Returns
    -------
    int
        0 or an errno (ENOENT, EINVAL, EBADE), -1 overflow.
    """
    st.scal[S_NCHG] = 0
    if not _has(st, src_slot) or not _has(st, dst_slot):
        return ENOENT
    if src_off < 0 or dst_off < 0 or length < 0:
        return EINVAL
    if length > st.size[src_slot] - src_off:
        return EINVAL
    done = 0
    while done < length:
        chunk = min(length - done, DEDUPE_MAX_BYTES)
        so = src_off + done
        do = dst_off + done
        err, ln = _remap_checks(st, src_slot, so, dst_slot, do, chunk, True)
        if err != 0:
            return _finish(st, err)
        if ln:
            if not _compare(st, src_slot, so, dst_slot, do, ln):
                return _finish(st, EBADE)
            err, ln = _check_len(st, dst_slot, do, ln, True)
        if ln:
            err = _remap_blocks(st, src_slot, so // BS, dst_slot, do // BS, _ceil_blocks(ln))
            if err != 0:
                return _finish(st, err)
            st.reflink[src_slot] = 1
            st.reflink[dst_slot] = 1
        done += chunk
    return _finish(st, 0)


@njit(cache=True)
def fs_iomap(st, slot, fblock, nblocks, out):
    """FileSystem.iomap: ``out[:4] = (state, pblock, nblocks, shared)``.

    Parameters
    ----------
    st : FsState
    slot, fblock, nblocks : int
    out : ndarray of int64, shape (4,)

    Returns
    -------
    int
        0 or ENOENT.
    """
    if not _has(st, slot):
        return ENOENT
    if nblocks == 1:
        i = _find(st, slot, fblock)
        if i < 0:
            out[0] = HOLE
            out[1] = -1
            out[2] = 1
            out[3] = 0
            return 0
        p = st.ext[slot, i, 2] + fblock - st.ext[slot, i, 0]
        out[0] = st.ext[slot, i, 3]
        out[1] = p
        out[2] = 1
        out[3] = 1 if st.rc[p] > 1 else 0
        return 0
    end = min(fblock + nblocks, (fblock | 511) + 1)
    rows = _rows(st, slot, fblock, end, True)
    state = -1
    pb = -1
    length = 0
    shared = False
    for r in range(rows.shape[0]):
        n = rows[r, 1]
        p = rows[r, 2]
        stt = rows[r, 3]
        sh = rows[r, 4] > 1
        if state < 0:
            state = stt
            pb = p
            shared = sh
            length = n
            continue
        if stt != state or sh != shared:
            break
        if state == WRITTEN and p != pb + length:
            break
        length += n
    if state < 0:
        out[0] = HOLE
        out[1] = -1
        out[2] = nblocks
        out[3] = 0
        return 0
    out[0] = state
    out[1] = pb
    out[2] = length
    out[3] = 1 if shared else 0
    return 0


@njit(cache=True)
def fs_alloc_blocks(st, slot, fblock, nblocks):
    """Write fault on holes / unwritten blocks (FileSystem.alloc_blocks).

    Parameters
    ----------
    st : FsState
    slot, fblock, nblocks : int

    Returns
    -------
    int
        0 or an errno (ENOENT, ENOSPC), -1 overflow.
    """
    st.scal[S_NCHG] = 0
    if not _has(st, slot):
        return ENOENT
    return _finish(st, _alloc_blocks(st, slot, fblock, nblocks))


@njit(cache=True)
def fs_cow_blocks(st, slot, fblock, nblocks):
    """Write-fault CoW of shared written blocks (FileSystem.cow_blocks).

    Parameters
    ----------
    st : FsState
    slot, fblock, nblocks : int

    Returns
    -------
    int
        0 or an errno (ENOENT, ENOSPC), -1 overflow.
    """
    st.scal[S_NCHG] = 0
    if not _has(st, slot):
        return ENOENT
    return _finish(st, _cow_blocks(st, slot, fblock, nblocks))


@njit(cache=True)
def fs_rmap(st, pblock, out):
    """FileSystem.rmap: rows ``(slot, fblock)`` of every file block mapping ``pblock``,
    sorted by inode number then file block.

    Parameters
    ----------
    st : FsState
    pblock : int
    out : ndarray of int64, shape (k, 2)

    Returns
    -------
    int
        The number of rows, -1 if ``out`` is too small.
    """
    ns = st.ino.shape[0]
    k = 0
    done = np.zeros(ns, np.bool_)
    for _ in range(ns):
        best = -1
        for s in range(ns):
            if st.ino[s] >= 0 and not done[s] and (best < 0 or st.ino[s] < st.ino[best]):
                best = s
        if best < 0:
            break
        done[best] = True
        for i in range(st.next[best]):
            p = st.ext[best, i, 2]
            if p <= pblock < p + st.ext[best, i, 1]:
                if k >= out.shape[0]:
                    return _ovf(st)
                out[k, 0] = best
                out[k, 1] = st.ext[best, i, 0] + pblock - p
                k += 1
    return k


@njit(cache=True)
def fs_shared_pages(st, slot, size, out):
    """``sim.hunt.search._shared_pages``: file pages below ``ceil(size / 4096)`` whose block
    has a refcount above 1, in order (stopping after the row that passes 4096 pages).

    Parameters
    ----------
    st : FsState
    slot, size : int
    out : ndarray of int64

    Returns
    -------
    int
        The number of pages, -ENOENT (-2) for no file, -1 if ``out`` is too small.
    """
    if not _has(st, slot):
        return -ENOENT
    nb = _ceil_blocks(size)
    if nb <= 0:
        return 0
    rows = _rows(st, slot, 0, nb, True)
    k = 0
    for r in range(rows.shape[0]):
        if rows[r, 4] > 1:
            f = rows[r, 0]
            e = min(f + rows[r, 1], nb)
            for fb in range(f, e):
                if k >= out.shape[0]:
                    return _ovf(st)
                out[k] = fb
                k += 1
            if k > 4096:
                break
    return k


@njit(cache=True)
def fs_read(st, slot, off, length, out):
    """read(2) (FileSystem.pread): bytes of ``[off, off + length)`` clipped at EOF.

    Parameters
    ----------
    st : FsState
    slot, off, length : int
    out : ndarray of uint8

    Returns
    -------
    int
        Bytes read, or -ENOENT / -EINVAL, or -1 if ``out`` is too small.
    """
    if not _has(st, slot):
        return -ENOENT
    if off < 0 or length < 0:
        return -EINVAL
    size = st.size[slot]
    if off >= size:
        return 0
    end = size if length > size - off else off + length
    n = end - off
    if n > out.shape[0]:
        return _ovf(st)
    data = st.data
    pos = off
    while pos < end:
        fb = pos // BS
        a = pos - fb * BS
        e = end - fb * BS
        if e > BS:
            e = BS
        p = _wblock(st, slot, fb)
        o = pos - off
        if p < 0:
            out[o : o + e - a] = 0
        else:
            pg_read(st.ub, data, p, a, e, out, o)
        pos += e - a
    return n


@njit(cache=True)
def fs_refcounts_ok(st):
    """Refcount conservation (FileSystem.check_invariants): extents sorted, merged, on
    the device; every block's refcount equals the extents mapping it; the free runs sorted,
    maximal, exactly the blocks of refcount 0; the free count.

    Parameters
    ----------
    st : FsState

    Returns
    -------
    bool
    """
    nb = st.rc.shape[0]
    cnt = np.zeros(nb, np.int64)
    cnt[: st.scal[S_META]] = 1  # the metadata mkfs keeps (fs_reset)
    ext = st.ext
    for s in range(st.ino.shape[0]):
        if st.ino[s] < 0:
            continue
        end = -1
        pend = -1
        pst = -1
        for i in range(st.next[s]):
            f = ext[s, i, 0]
            ln = ext[s, i, 1]
            p = ext[s, i, 2]
            t = ext[s, i, 3]
            if ln <= 0 or (end >= 0 and f < end) or (t != UNWRITTEN and t != WRITTEN):
                return False
            if p < 0 or p + ln > nb:
                return False
            if f == end and p == pend and t == pst:
                return False
            end = f + ln
            pend = p + ln
            pst = t
            for b in range(p, p + ln):
                cnt[b] += 1
    used = 0
    for b in range(nb):
        if cnt[b] != st.rc[b]:
            return False
        if cnt[b] > 0:
            used += 1
    nf = st.scal[S_NRUNS]
    tot = 0
    fend = -1
    for j in range(nf):
        s0 = st.fr_s[j]
        ln = st.fr_l[j]
        if ln <= 0 or s0 <= fend or s0 + ln > nb:
            return False
        for b in range(s0, s0 + ln):
            if cnt[b] != 0:
                return False
        tot += ln
        fend = s0 + ln
    if tot != st.scal[S_NFREE]:
        return False
    if used + st.scal[S_NFREE] != nb:
        return False
    return True
