"""Sorted runs: the array kernel under extent maps, refcounts, content and free space.

A :class:`RunMap` holds non-overlapping half-open runs ``[start, start + length)`` sorted by
``start``, each with a fixed number of int64 value columns. A column is either *constant*
along a run (a state, a content id, a count) or an *offset* column that grows by one per
block along the run (the physical block of an extent). Cutting a run in two adds the cut
distance to its offset columns. Adjacent runs merge when they touch, their constant columns
are equal and their offset columns continue each other.

Everything here is array-in/array-out numpy; no Python object per block or per run.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RunMap", "segments", "merge_runs", "sweep_deltas", "EMPTY"]

EMPTY = np.zeros(0, dtype=np.int64)


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def merge_runs(start, length, cols, offset_mask):
    """Merge touching, compatible runs.

    Parameters
    ----------
    start, length : ndarray of int64
        Sorted, non-overlapping runs.
    cols : list of ndarray of int64
        Value columns, one entry per run.
    offset_mask : tuple of bool
        Which columns are offset columns.

    Returns
    -------
    start, length, cols
        The merged runs.
    """
    n = start.shape[0]
    if n < 2:
        return start, length, cols
    end = start + length
    join = end[:-1] == start[1:]
    for c, off in zip(cols, offset_mask, strict=False):
        if off:
            join &= (c[:-1] + length[:-1]) == c[1:]
        else:
            join &= c[:-1] == c[1:]
    if not join.any():
        return start, length, cols
    head = np.ones(n, dtype=bool)
    head[1:] = ~join
    idx = np.flatnonzero(head)
    new_start = start[idx]
    last = np.empty_like(idx)
    last[:-1] = idx[1:] - 1
    last[-1] = n - 1
    new_length = end[last] - new_start
    return new_start, new_length, [c[idx] for c in cols]


def segments(rec_start, rec_len, q_start, q_len):
    """Cut query ranges at run boundaries, reporting the covering run of each piece.

    Parameters
    ----------
    rec_start, rec_len : ndarray of int64
        Sorted non-overlapping runs.
    q_start, q_len : ndarray of int64
        Query ranges (any order, may overlap each other; ``q_len > 0``).

    Returns
    -------
    qidx, seg_start, seg_len, rec : ndarray of int64
        Pieces in query order then position order; ``rec`` is the covering run index or -1
        for a gap between runs.
    """
    q_start = _i64(q_start)
    q_len = _i64(q_len)
    nq = q_start.shape[0]
    if nq == 1:
        return _segments1(rec_start, rec_len, int(q_start[0]), int(q_start[0] + q_len[0]))
    q_end = q_start + q_len
    rec_end = rec_start + rec_len
    i0 = rec_end.searchsorted(q_start, side="right")
    i1 = rec_start.searchsorted(q_end, side="left")
    cnt = np.maximum(i1 - i0, 0)
    total = int(cnt.sum())
    if total == 0:
        return (
            np.arange(nq, dtype=np.int64),
            q_start.copy(),
            q_len.copy(),
            np.full(nq, -1, np.int64),
        )
    if nq == 1:
        ri = np.arange(i0[0], i0[0] + total, dtype=np.int64)
        qi = np.zeros(total, dtype=np.int64)
    else:
        qi = np.repeat(np.arange(nq, dtype=np.int64), cnt)
        first = np.cumsum(cnt) - cnt
        ri = i0[qi] + (np.arange(total, dtype=np.int64) - first[qi])
    cs = np.maximum(rec_start[ri], q_start[qi])
    ce = np.minimum(rec_end[ri], q_end[qi])
    # Pieces covered by runs, in (query, position) order already. Add the gaps.
    # gap before each covered piece: from previous piece end (or query start) to cs.
    prev_end = np.empty(total, dtype=np.int64)
    prev_end[1:] = ce[:-1]
    newq = np.ones(total, dtype=bool)
    newq[1:] = qi[1:] != qi[:-1]
    prev_end[newq] = q_start[qi[newq]]
    gap_before = cs > prev_end
    # trailing gap per query: last covered end < q_end; queries with no coverage: whole gap
    last_of_q = np.ones(total, dtype=bool)
    last_of_q[:-1] = qi[1:] != qi[:-1]
    tail_q = qi[last_of_q]
    tail_s = ce[last_of_q]
    tail_gap = tail_s < q_end[tail_q]
    empty_q = np.flatnonzero(cnt == 0)
    parts_q = [qi[gap_before], qi, tail_q[tail_gap], empty_q]
    parts_s = [prev_end[gap_before], cs, tail_s[tail_gap], q_start[empty_q]]
    parts_e = [cs[gap_before], ce, q_end[tail_q[tail_gap]], q_end[empty_q]]
    parts_r = [
        np.full(int(gap_before.sum()), -1, np.int64),
        ri,
        np.full(int(tail_gap.sum()), -1, np.int64),
        np.full(empty_q.shape[0], -1, np.int64),
    ]
    oq = np.concatenate(parts_q)
    os_ = np.concatenate(parts_s)
    oe = np.concatenate(parts_e)
    orr = np.concatenate(parts_r)
    if oq.shape[0] != total:
        order = np.lexsort((os_, oq))
        oq, os_, oe, orr = oq[order], os_[order], oe[order], orr[order]
    return oq, os_, oe - os_, orr


def _segments1(rec_start, rec_len, lo: int, hi: int):
    """:func:`segments` for one query ``[lo, hi)`` (no whole-map temporaries)."""
    n = rec_start.shape[0]
    i0 = int(rec_start.searchsorted(lo, side="right")) - 1
    if i0 < 0 or rec_start[i0] + rec_len[i0] <= lo:
        i0 += 1
    i1 = int(rec_start.searchsorted(hi, side="left"))
    if i1 <= i0 or n == 0:
        return (
            np.zeros(1, np.int64),
            np.array([lo], np.int64),
            np.array([hi - lo], np.int64),
            np.full(1, -1, np.int64),
        )
    m = i1 - i0
    rs = rec_start[i0:i1]
    cs = np.maximum(rs, lo)
    ce = np.minimum(rs + rec_len[i0:i1], hi)
    st = np.empty(2 * m + 1, np.int64)
    en = np.empty(2 * m + 1, np.int64)
    rr = np.full(2 * m + 1, -1, np.int64)
    st[0] = lo
    st[2 : 2 * m : 2] = ce[:-1]
    st[1 : 2 * m : 2] = cs
    st[2 * m] = ce[-1]
    en[0 : 2 * m : 2] = cs
    en[1 : 2 * m : 2] = ce
    en[2 * m] = hi
    rr[1 : 2 * m : 2] = np.arange(i0, i1, dtype=np.int64)
    keep = en > st
    st, en, rr = st[keep], en[keep], rr[keep]
    return np.zeros(st.shape[0], np.int64), st, en - st, rr


def sweep_deltas(starts, lens, deltas):
    """Sum possibly overlapping range deltas into disjoint runs of non-zero total delta.

    Parameters
    ----------
    starts, lens, deltas : ndarray of int64
        Ranges ``[start, start + len)`` each adding ``delta``.

    Returns
    -------
    start, length, delta : ndarray of int64
        Disjoint sorted runs where the summed delta is non-zero.
    """
    starts = _i64(starts)
    lens = _i64(lens)
    deltas = _i64(deltas)
    if starts.shape[0] == 1:
        if deltas[0] == 0 or lens[0] <= 0:
            return EMPTY, EMPTY, EMPTY
        return starts.copy(), lens.copy(), deltas.copy()
    if starts.shape[0] > 64:
        # fold repeated identical ranges first (2^20 references to one block cost one range)
        o = np.lexsort((lens, starts))
        s_, l_, d_ = starts[o], lens[o], deltas[o]
        head = np.ones(s_.shape[0], dtype=bool)
        head[1:] = (s_[1:] != s_[:-1]) | (l_[1:] != l_[:-1])
        idx = np.flatnonzero(head)
        starts, lens, deltas = s_[idx], l_[idx], np.add.reduceat(d_, idx)
        if starts.shape[0] == 1:
            return sweep_deltas(starts, lens, deltas)
    pts = np.concatenate([starts, starts + lens])
    dv = np.concatenate([deltas, -deltas])
    upts, inv = np.unique(pts, return_inverse=True)
    acc = np.zeros(upts.shape[0], dtype=np.int64)
    np.add.at(acc, inv, dv)
    level = np.cumsum(acc)[:-1]
    seg_s = upts[:-1]
    seg_l = upts[1:] - upts[:-1]
    keep = level != 0
    s, ln, d = merge_runs(seg_s[keep], seg_l[keep], [level[keep]], (False,))
    return s, ln, d[0]


class RunMap:
    """Sorted non-overlapping runs with int64 value columns.

    Parameters
    ----------
    offset_mask : tuple of bool
        One entry per value column: True for offset columns (grow by one per block).
    """

    __slots__ = ("start", "length", "cols", "offset_mask")

    def __init__(self, offset_mask: tuple[bool, ...] = ()):
        self.offset_mask = tuple(offset_mask)
        self.start = EMPTY
        self.length = EMPTY
        self.cols = [EMPTY for _ in self.offset_mask]

    def __len__(self) -> int:
        return int(self.start.shape[0])

    @property
    def end(self) -> np.ndarray:
        return self.start + self.length

    def copy(self) -> "RunMap":
        m = RunMap(self.offset_mask)
        m.start, m.length, m.cols = (
            self.start.copy(),
            self.length.copy(),
            [c.copy() for c in self.cols],
        )
        return m

    def total(self) -> int:
        """Total length of all runs."""
        return int(self.length.sum())

    def window(self, lo: int, hi: int) -> tuple[int, int]:
        """Indices ``[i0, i1)`` of the runs overlapping ``[lo, hi)``."""
        s = self.start
        i1 = int(s.searchsorted(hi, side="left"))
        i0 = int(s.searchsorted(lo, side="right")) - 1
        if i0 < 0 or s[i0] + self.length[i0] <= lo:
            i0 += 1
        return i0, max(i0, i1)

    def get(self, lo: int, hi: int):
        """Runs clipped to ``[lo, hi)`` (gaps left out): ``(start, length, cols)`` copies."""
        i0, i1 = self.window(lo, hi)
        s = self.start[i0:i1].copy()
        ln = self.length[i0:i1].copy()
        cols = [c[i0:i1].copy() for c in self.cols]
        if i1 > i0:
            if s[0] < lo:
                d = lo - s[0]
                s[0] = lo
                ln[0] -= d
                for c, off in zip(cols, self.offset_mask, strict=False):
                    if off:
                        c[0] += d
            e = s[-1] + ln[-1]
            if e > hi:
                ln[-1] -= e - hi
        return s, ln, cols

    def splice(self, lo: int, hi: int, new_start=EMPTY, new_len=EMPTY, new_cols=None) -> int:
        """Replace everything in ``[lo, hi)`` with the given runs (which lie inside it).

        Returns
        -------
        int
            Number of records touched (removed, cut or inserted).
        """
        if new_cols is None:
            new_cols = [EMPTY for _ in self.offset_mask]
        i0, i1 = self.window(lo, hi)
        s, ln, cols = self.start, self.length, self.cols
        pieces_s = [s[:i0]]
        pieces_l = [ln[:i0]]
        pieces_c = [[c[:i0]] for c in cols]
        if i1 > i0 and s[i0] < lo:
            pieces_s.append(s[i0 : i0 + 1])
            pieces_l.append(_i64([lo - s[i0]]))
            for pc, c in zip(pieces_c, cols, strict=False):
                pc.append(c[i0 : i0 + 1])
        pieces_s.append(_i64(new_start))
        pieces_l.append(_i64(new_len))
        for pc, c in zip(pieces_c, new_cols, strict=False):
            pc.append(_i64(c))
        if i1 > i0:
            e = s[i1 - 1] + ln[i1 - 1]
            if e > hi:
                d = hi - s[i1 - 1]
                pieces_s.append(_i64([hi]))
                pieces_l.append(_i64([e - hi]))
                for pc, c, off in zip(pieces_c, cols, self.offset_mask, strict=False):
                    pc.append(c[i1 - 1 : i1] + d if off else c[i1 - 1 : i1])
        # merge only around the junctions: the region [i0-1, i0 + inserted + 1]
        mid_s = np.concatenate(pieces_s[1:]) if len(pieces_s) > 1 else EMPTY
        mid_l = np.concatenate(pieces_l[1:])
        mid_c = [np.concatenate(pc[1:]) for pc in pieces_c]
        lo_i = max(i0 - 1, 0)
        hi_i = min(i1 + 1, s.shape[0])
        # window for merging: previous neighbour + middle + next neighbour
        w_s = np.concatenate([s[lo_i:i0], mid_s, s[i1:hi_i]])
        w_l = np.concatenate([ln[lo_i:i0], mid_l, ln[i1:hi_i]])
        w_c = [
            np.concatenate([c[lo_i:i0], mc, c[i1:hi_i]]) for c, mc in zip(cols, mid_c, strict=False)
        ]
        w_s, w_l, w_c = merge_runs(w_s, w_l, w_c, self.offset_mask)
        self.start = np.concatenate([s[:lo_i], w_s, s[hi_i:]])
        self.length = np.concatenate([ln[:lo_i], w_l, ln[hi_i:]])
        self.cols = [
            np.concatenate([c[:lo_i], wc, c[hi_i:]]) for c, wc in zip(cols, w_c, strict=False)
        ]
        return (i1 - i0) + int(_i64(new_start).shape[0])

    def assign_many(self, new_start, new_len, new_cols) -> int:
        """Overwrite several disjoint ranges with the given runs (one run per range)."""
        return self.replace_ranges(new_start, new_len, new_start, new_len, new_cols)

    def replace_ranges(self, clear_start, clear_len, new_start, new_len, new_cols) -> int:
        """Clear several disjoint ranges and insert runs lying inside them.

        Returns
        -------
        int
            Number of records touched.
        """
        clear_start = _i64(clear_start)
        k = clear_start.shape[0]
        if k == 0:
            return 0
        clear_len = _i64(clear_len)
        new_start = _i64(new_start)
        new_len = _i64(new_len)
        new_cols = [_i64(c) for c in new_cols]
        if k == 1:
            return self.splice(
                int(clear_start[0]),
                int(clear_start[0] + clear_len[0]),
                new_start,
                new_len,
                new_cols,
            )
        order = np.argsort(clear_start, kind="stable")
        clear_start, clear_len = clear_start[order], clear_len[order]
        lo = int(clear_start[0])
        hi = int(clear_start[-1] + clear_len[-1])
        i0, i1 = self.window(lo, hi)
        ws, wl = self.start[i0:i1], self.length[i0:i1]
        wc = [c[i0:i1] for c in self.cols]
        # the old runs minus the cleared ranges
        qi, ss, sl, rr = segments(clear_start, clear_len, ws, wl)
        keep = rr < 0
        ks, kl, kq = ss[keep], sl[keep], qi[keep]
        kc = [
            c[kq] + (ks - ws[kq]) if off else c[kq]
            for c, off in zip(wc, self.offset_mask, strict=True)
        ]
        all_s = np.concatenate([ks, new_start])
        all_l = np.concatenate([kl, new_len])
        all_c = [np.concatenate([a, b]) for a, b in zip(kc, new_cols, strict=True)]
        o = np.argsort(all_s, kind="stable")
        all_s, all_l = all_s[o], all_l[o]
        all_c = [c[o] for c in all_c]
        all_s, all_l, all_c = merge_runs(all_s, all_l, all_c, self.offset_mask)
        if i1 > i0:
            lo = min(lo, int(ws[0]))
            hi = max(hi, int(ws[-1] + wl[-1]))
        self.splice(lo, hi, all_s, all_l, all_c)
        return (i1 - i0) + int(new_start.shape[0])
