"""The hunt's random op generator as a numba kernel.

:func:`generate_op` is an exact transcription of :func:`sim.hunt.search.generate_op`: from
the same doubles it consumes the same number of draws, in the same order, and produces the
same op (or the same "cannot apply": None there, ``out[0] == -1`` here).

Randomness
----------
:class:`sim.hunt.search.Draws` hands out the doubles of successive ``rng.random(256)``
blocks, which are the doubles of one ``rng.random(N)`` call; the engine pre-draws an
episode's doubles into one float64 array ``u`` and keeps a position ``pos`` (the index of the
next unused double). ``Draws.integers(lo, hi)`` is ``lo + int(x * (hi - lo))`` clipped to
``hi - 1`` (``integers(n)``: ``integers(0, n)``); :func:`_ri` computes the same.

Files are slots (slot ``k`` is path ``f{k}``); kinds are codes, the index of each kind in
:data:`sim.constants.HUNT_KINDS` (:data:`K_PWRITE` ... :data:`K_UNLINK`).

Shared pages
------------
The Python reads ``_shared_pages(sess, path, size)`` (a filesystem query) only when a draw
says so, for one file. The caller passes ``nshared = -1`` (unknown) first; when the
transcription needs the shared pages of slot ``s`` and does not have them (``nshared == -1``
or ``shared_slot != s``), it returns ``-(2 + s)`` without side effects. The caller then puts
exactly what ``_shared_pages`` returns for ``s`` into ``shared[:n]`` and calls again with the
same ``pos``, ``nshared = n`` and ``shared_slot = s`` (the draws are consumed again, the same).
"""

from __future__ import annotations

import numpy as np

from sim.constants import HUNT_KINDS as OP_KINDS
from sim.constants import PAGE_SIZE as PAGE
from sim.constants import PMD_SIZE
from sim.jit import njit

__all__ = [
    "generate_op",
    "kind_arrays",
    "kind_code",
    "NO_OP",
    "EXHAUSTED",
    "MAX_DRAWS",
    "WEIGHTS",
    "SMALL_BLOCKS",
    "PMD_BYTES",
    "K_PWRITE",
    "K_TRUNCATE",
    "K_PUNCH",
    "K_ZERO",
    "K_UNSHARE",
    "K_CLONE",
    "K_DEDUPE",
    "K_MREAD",
    "K_MWRITE",
    "K_HWPOISON",
    "K_MUNMAP",
    "K_UNLINK",
]

K_PWRITE = 0
K_TRUNCATE = 1
K_PUNCH = 2
K_ZERO = 3
K_UNSHARE = 4
K_CLONE = 5
K_DEDUPE = 6
K_MREAD = 7
K_MWRITE = 8
K_HWPOISON = 9
K_MUNMAP = 10
K_UNLINK = 11

assert OP_KINDS == (
    "pwrite",
    "truncate",
    "punch",
    "zero",
    "unshare",
    "clone",
    "dedupe",
    "mread",
    "mwrite",
    "hwpoison",
    "munmap",
    "unlink",
)

#: ``out[0]`` when the drawn kind cannot apply (the Python returns None).
NO_OP = -1
#: Return value when ``u`` runs out of doubles (the engine falls back to Python).
EXHAUSTED = -1
#: Bound on the doubles one op consumes (at most 13: an mread/mwrite at a random window).
MAX_DRAWS = 16

# The constants of sim.hunt.search, repeated here: that module imports the compiled engine,
# which imports this one (the tests check both agree).
#: Weights of the kinds (``sim.hunt.search._WEIGHTS``).
WEIGHTS = {
    "pwrite": 3.0,
    "clone": 3.0,
    "dedupe": 1.0,
    "mread": 4.0,
    "mwrite": 3.0,
    "truncate": 1.0,
    "punch": 1.0,
    "zero": 1.0,
    "unshare": 1.0,
    "unlink": 0.7,
    "hwpoison": 1.0,
    "munmap": 2.0,
}
#: ``sim.hunt.search.SMALL_BLOCKS``
SMALL_BLOCKS = 8
#: ``sim.hunt.search.PMD_BYTES``
PMD_BYTES = PMD_SIZE

_PAGE = PAGE
_SMALL = SMALL_BLOCKS
_PMD = PMD_BYTES


def kind_code(kind: str) -> int:
    """The code of an op kind (its index in :data:`~sim.constants.HUNT_KINDS`)."""
    return OP_KINDS.index(kind)


def kind_arrays(kinds) -> tuple[np.ndarray, np.ndarray]:
    """``(cw, codes)`` for :func:`generate_op`: the cumulative weights of ``kinds`` (the
    values of ``sim.hunt.search._cum_weights``) and their codes, both in the order given.

    Parameters
    ----------
    kinds : sequence of str

    Returns
    -------
    cw : ndarray of float64
    codes : ndarray of int64
    """
    kinds = tuple(kinds)
    cw = np.array(np.cumsum([WEIGHTS[k] for k in kinds]).tolist(), dtype=np.float64)
    return cw, np.array([kind_code(k) for k in kinds], dtype=np.int64)


@njit(cache=True, inline="always")
def _rd(u, p):  # pragma: no cover - compiled
    """``Draws.random()`` at position ``p`` (0.0 past the end: the caller reports
    exhaustion; 0.0 keeps every derived index in range meanwhile)."""
    if p < u.shape[0]:
        return u[p]
    return 0.0


@njit(cache=True, inline="always")
def _ri(u, p, lo, hi):  # pragma: no cover - compiled
    """``Draws.integers(lo, hi)`` at position ``p``."""
    v = lo + np.int64(_rd(u, p) * (hi - lo))
    return v if v < hi else hi - 1


@njit(cache=True, inline="always")
def _kth_file(cm_exists, cm_size, nfiles, k, nonempty):  # pragma: no cover - compiled
    """Slot of the ``k``-th existing (``nonempty``: and non-empty) file among ``f0 ..``."""
    c = 0
    for f in range(nfiles):
        if cm_exists[f] != 0 and (not nonempty or cm_size[f] > 0):
            if c == k:
                return f
            c += 1
    return -1


@njit(cache=True)
def _gen(
    u,
    pos,
    cw,
    kinds,
    nfiles,
    cm_exists,
    cm_size,
    map_slot,
    map_off,
    map_len,
    nmaps,
    shared,
    nshared,
    shared_slot,
):  # pragma: no cover - compiled
    """The transcription: ``(p, kind, slot, src, a0, a1, a2, a3, a4, need)`` with ``kind``
    -1 for None and ``need`` the slot whose shared pages are missing (else -1)."""
    P = _PAGE
    p = pos
    nk = kinds.shape[0]
    # kind: bisect_right(cw, x * cw[-1])
    t = _rd(u, p) * cw[nk - 1]
    p += 1
    ki = 0
    while ki < nk and cw[ki] <= t:
        ki += 1
    k = kinds[ki if ki < nk else nk - 1]
    slot = _ri(u, p, 0, nfiles)
    p += 1
    byte = _ri(u, p, 0x61, 0x7B)
    p += 1
    if k == K_PWRITE:
        x = _rd(u, p)
        p += 1
        if x < 0.08:
            return p, k, slot, -1, 0, _PMD, byte, 0, 0, -1
        x = _rd(u, p)
        p += 1
        if x < 0.7:
            a0 = _ri(u, p, 0, _SMALL) * P
            a1 = _ri(u, p + 1, 1, 9) * P
            return p + 2, k, slot, -1, a0, a1, byte, 0, 0, -1
        a0 = _ri(u, p, 0, _SMALL * P)
        a1 = _ri(u, p + 1, 1, 3 * P)
        return p + 2, k, slot, -1, a0, a1, byte, 0, 0, -1
    if k == K_MUNMAP:
        if nmaps <= 0:
            return p, -1, 0, -1, 0, 0, 0, 0, 0, -1
        i = _ri(u, p, 0, nmaps)
        p += 1
        return p, k, map_slot[i], -1, map_off[i], map_len[i], 0, 0, 0, -1
    nlive = 0
    nne = 0
    for f in range(nfiles):
        if cm_exists[f] != 0:
            nlive += 1
            if cm_size[f] > 0:
                nne += 1
    if k == K_UNLINK:
        if nlive == 0:
            return p, -1, 0, -1, 0, 0, 0, 0, 0, -1
        s = _kth_file(cm_exists, cm_size, nfiles, _ri(u, p, 0, nlive), False)
        return p + 1, k, s, -1, 0, 0, 0, 0, 0, -1
    if k == K_TRUNCATE or k == K_PUNCH or k == K_ZERO or k == K_UNSHARE:
        if nlive == 0:
            return p, -1, 0, -1, 0, 0, 0, 0, 0, -1
        s = _kth_file(cm_exists, cm_size, nfiles, _ri(u, p, 0, nlive), False)
        p += 1
        size = cm_size[s]
        if k == K_TRUNCATE:
            v = _ri(u, p, 0, _SMALL * P + 1)
            x = _rd(u, p + 1)
            p += 2
            return p, k, s, -1, (v // P) * P if x < 0.5 else v, 0, 0, 0, 0, -1
        top = max(size, P) + 2 * P
        x = _rd(u, p)
        p += 1
        if x < 0.6:
            off = _ri(u, p, 0, top // P) * P
            ln = _ri(u, p + 1, 1, 9) * P
        else:
            off = _ri(u, p, 0, top)
            ln = _ri(u, p + 1, 1, 3 * P)
        p += 2
        if k == K_ZERO:
            keep = 1 if _rd(u, p) < 0.5 else 0
            return p + 1, k, s, -1, off, ln, keep, 0, 0, -1
        return p, k, s, -1, off, ln, 0, 0, 0, -1
    if nne == 0:
        return p, -1, 0, -1, 0, 0, 0, 0, 0, -1
    if k == K_CLONE or k == K_DEDUPE:
        src = _kth_file(cm_exists, cm_size, nfiles, _ri(u, p, 0, nne), True)
        p += 1
        dst = src
        if nfiles > 1:  # others = files other than src
            x = _rd(u, p)
            p += 1
            if x < 0.85:
                j = _ri(u, p, 0, nfiles - 1)
                p += 1
                dst = j if j < src else j + 1
        ssize = cm_size[src]
        if k == K_CLONE:
            if dst != src:
                x = _rd(u, p)
                p += 1
                if x < 0.3:
                    return p, k, dst, src, 0, 0, 0, 0, 0, -1
            soff = _ri(u, p, 0, -(-ssize // P)) * P
            p += 1
            full = (ssize - soff) // P
            ln = 0
            if full != 0:
                x = _rd(u, p)
                p += 1
                if not x < 0.3:
                    ln = _ri(u, p, 1, min(full, 8) + 1) * P
                    p += 1
            doff = _ri(u, p, 0, _SMALL) * P
            p += 1
            if dst == src:  # same file: keep the ranges apart
                doff = soff + max(ln, ssize - soff) + _ri(u, p, 0, 4) * P
                p += 1
                doff = -(-doff // P) * P
            return p, k, dst, src, soff, doff, ln, 0, 0, -1
        dsize = cm_size[dst] if cm_exists[dst] != 0 else -1
        if dsize <= 0 or dst == src:
            return p, -1, 0, -1, 0, 0, 0, 0, 0, -1
        nb = min(ssize, dsize) // P
        if nb == 0:
            return p, -1, 0, -1, 0, 0, 0, 0, 0, -1
        soff = _ri(u, p, 0, nb) * P
        x = _rd(u, p + 1)
        p += 2
        if x < 0.5:
            doff = soff
        else:
            doff = _ri(u, p, 0, nb) * P
            p += 1
        room = min(ssize - soff, dsize - doff) // P
        if room <= 0:
            return p, -1, 0, -1, 0, 0, 0, 0, 0, -1
        ln = _ri(u, p, 1, min(room, 8) + 1) * P
        return p + 1, k, dst, src, soff, doff, ln, 0, 0, -1
    if k == K_MREAD or k == K_MWRITE or k == K_HWPOISON:
        s = _kth_file(cm_exists, cm_size, nfiles, _ri(u, p, 0, nne), True)
        p += 1
        size = cm_size[s]
        x = _rd(u, p)
        p += 1
        ns = 0
        if x < 0.5:
            if nshared < 0 or shared_slot != s:
                return p, -1, 0, -1, 0, 0, 0, 0, 0, s
            ns = nshared
        if ns > 0:  # aim at a block another file (or offset) also references
            pg = shared[_ri(u, p, 0, ns)]
            p += 1
            a = pg * P
            ncover = 0
            for i in range(nmaps):
                if map_slot[i] == s and map_off[i] <= a < map_off[i] + map_len[i]:
                    ncover += 1
            use = False
            if ncover > 0:
                x = _rd(u, p)
                p += 1
                use = x < 0.6
            if use:
                c = _ri(u, p, 0, ncover)
                p += 1
                moff = 0
                mlen = 0
                for i in range(nmaps):
                    if map_slot[i] == s and map_off[i] <= a < map_off[i] + map_len[i]:
                        if c == 0:
                            moff = map_off[i]
                            mlen = map_len[i]
                            break
                        c -= 1
            else:
                moff = a
                mlen = _ri(u, p, 1, 5) * P
                p += 1
            if k == K_HWPOISON:
                return p, k, s, -1, moff, mlen, a, P, 0, -1
            ln = _ri(u, p, 1, P)
            p += 1
            if k == K_MREAD:
                return p, k, s, -1, moff, mlen, a, ln, 0, -1
            return p, k, s, -1, moff, mlen, a, ln, byte, -1
        nm = 0
        for i in range(nmaps):
            if map_slot[i] == s:
                nm += 1
        pick = -1  # 0: PMD window, 1: an existing mapping, 2: a random window
        head = False
        if size >= _PMD:
            x = _rd(u, p)
            p += 1
            if x < 0.5:
                pick = 0
        if pick < 0 and nm > 0:
            x = _rd(u, p)
            p += 1
            if x < 0.6:
                pick = 1
        if pick == 0:
            moff = 0
            mlen = _PMD
        elif pick == 1:
            c = _ri(u, p, 0, nm)
            p += 1
            moff = 0
            mlen = 0
            for i in range(nmaps):
                if map_slot[i] == s:
                    if c == 0:
                        moff = map_off[i]
                        mlen = map_len[i]
                        break
                    c -= 1
        else:
            moff = _ri(u, p, 0, -(-size // P)) * P
            mlen = _ri(u, p + 1, 1, 17) * P
            x = _rd(u, p + 2)
            p += 3
            if x < 0.25:  # search._gen_fault: a window at a 2 MiB boundary, its first page
                moff -= moff % _PMD
                head = True
        lo = moff // P
        hi = min(moff + mlen, size + P - 1) // P
        if hi <= lo:
            return p, -1, 0, -1, 0, 0, 0, 0, 0, -1
        if head:
            pg = lo
        else:
            pg = _ri(u, p, lo, hi)
            p += 1
        if k == K_HWPOISON:
            r = _ri(u, p, 1, 3)
            return p + 1, k, s, -1, moff, mlen, pg * P, P * r, 0, -1
        x = _rd(u, p)
        p += 1
        off = pg * P
        if x < 0.3:
            off += _ri(u, p, 0, P)
            p += 1
        ln = _ri(u, p, 1, 2 * P)
        p += 1
        if k == K_MREAD:
            return p, k, s, -1, moff, mlen, off, ln, 0, -1
        return p, k, s, -1, moff, mlen, off, ln, byte, -1
    # an unknown kind code: no op (the Python raises ValueError)
    return p, -1, 0, -1, 0, 0, 0, 0, 0, -1


@njit(cache=True)
def generate_op(
    u,
    pos,
    cw,
    kinds,
    nfiles,
    cm_exists,
    cm_size,
    map_slot,
    map_off,
    map_len,
    nmaps,
    shared,
    nshared,
    shared_slot,
    out,
):  # pragma: no cover - compiled
    """One random op for the current state, as :func:`sim.hunt.search.generate_op` draws it.

    Parameters
    ----------
    u : ndarray of float64
        The episode's doubles.
    pos : int
        Index in ``u`` of the next unused double.
    cw : ndarray of float64
        Cumulative weights of ``kinds`` (:func:`kind_arrays`).
    kinds : ndarray of int64
        Kind codes (:data:`K_PWRITE` ...), in the order of the Python's ``kinds``.
    nfiles : int
        Files the ops range over (slots ``0 .. nfiles - 1``).
    cm_exists, cm_size : ndarray of int64
        The content model: file ``k`` exists (non-zero) and its size in bytes.
    map_slot, map_off, map_len : ndarray of int64
        Live mappings in the mapping table's order (``Session.mappings()``): the file slot,
        window offset and length (bytes); only the first ``nmaps`` are read.
    nmaps : int
    shared : ndarray of int64
        ``shared[:nshared]``: what ``_shared_pages`` returns for file ``shared_slot``.
    nshared : int
        -1 when not known (see the module docstring for the protocol).
    shared_slot : int
    out : ndarray of int64, shape (8,)
        On an op: ``(kind, slot, src_slot or -1, a0, a1, a2, a3, a4)``, the ``Op.args`` in
        ``a0 ..`` (unused: 0). When the drawn kind cannot apply: ``out[0] = -1`` (the rest
        as for an op with no args). Untouched when the return value is negative.

    Returns
    -------
    int
        The new position (``> pos``: the draws were consumed) on an op and on "cannot
        apply"; -1 when ``u`` ran out (no side effects); ``-(2 + s)`` when the shared pages
        of slot ``s`` are needed (no side effects: call again with the same ``pos``).
    """
    r = _gen(
        u,
        pos,
        cw,
        kinds,
        nfiles,
        cm_exists,
        cm_size,
        map_slot,
        map_off,
        map_len,
        nmaps,
        shared,
        nshared,
        shared_slot,
    )
    p = r[0]
    if p > u.shape[0]:
        return EXHAUSTED
    if r[9] >= 0:
        return -(2 + r[9])
    out[0] = r[1]
    out[1] = r[2]
    out[2] = r[3]
    out[3] = r[4]
    out[4] = r[5]
    out[5] = r[6]
    out[6] = r[7]
    out[7] = r[8]
    return p
