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

from bisect import bisect_left, bisect_right

import numpy as np

__all__ = ["RunMap", "segments", "merge_runs", "sweep_deltas", "EMPTY", "merge_list_runs"]

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


def _joiner(offset_mask: tuple[bool, ...]):
    """``join(m, r)``: whether row ``r`` continues row ``m`` (touching, compatible)."""
    if offset_mask == (True, False):
        return lambda m, r: m[0] + m[1] == r[0] and m[2] + m[1] == r[2] and m[3] == r[3]
    if offset_mask == (False,):
        return lambda m, r: m[0] + m[1] == r[0] and m[2] == r[2]
    if offset_mask == (True,):
        return lambda m, r: m[0] + m[1] == r[0] and m[2] + m[1] == r[2]
    if offset_mask == ():
        return lambda m, r: m[0] + m[1] == r[0]
    offs = tuple(2 + j for j, o in enumerate(offset_mask) if o)
    consts = tuple(2 + j for j, o in enumerate(offset_mask) if not o)

    def join(m, r):
        ln = m[1]
        if m[0] + ln != r[0]:
            return False
        for j in offs:
            if m[j] + ln != r[j]:
                return False
        return all(m[j] == r[j] for j in consts)

    return join


#: Column layouts with inlined single-run paths: offset mask -> layout code (4: generic).
_KINDS = {(True, False): 0, (False,): 1, (True,): 2, (): 3}

#: Row joiners of the column layouts in use (pure functions, built once).
_JOINERS = {m: _joiner(m) for m in ((True, False), (False,), (True,), ())}


def merge_list_runs(rows: list, offset_mask: tuple[bool, ...]) -> list:
    """:func:`merge_runs` on a list of row tuples ``(start, length, col0, col1, ...)``.

    Parameters
    ----------
    rows : list of tuple of int
        Sorted, non-overlapping runs.
    offset_mask : tuple of bool
        Which columns are offset columns.

    Returns
    -------
    list of tuple of int
        The merged rows (the same greedy joins as :func:`merge_runs`).
    """
    if len(rows) < 2:
        return rows
    kind = _KINDS.get(offset_mask, 4)
    if kind < 4:  # the joiners of _JOINERS, inlined per column layout
        m = rows[0]
        out = [m]
        for r in rows[1:]:
            ln = m[1]
            if m[0] + ln == r[0] and (
                kind == 3
                or (kind == 1 and m[2] == r[2])
                or (kind == 0 and m[2] + ln == r[2] and m[3] == r[3])
                or (kind == 2 and m[2] + ln == r[2])
            ):
                m = (m[0], ln + r[1], *m[2:])
                out[-1] = m
            else:
                out.append(r)
                m = r
        return out
    join = _joiner(offset_mask)
    out = [rows[0]]
    m = rows[0]
    for r in rows[1:]:
        if join(m, r):
            m = (m[0], m[1] + r[1], *m[2:])
            out[-1] = m
        else:
            out.append(r)
            m = r
    return out


#: A map in numpy form with more runs than this stays in numpy form for single splices.
LIST_MAX = 4096
#: Splices inserting more runs than this go through numpy.
SMALL_INSERT = 64


class RunMap:
    """Sorted non-overlapping runs with int64 value columns.

    The runs are held either as numpy arrays (bulk, vectorised operations) or as Python lists
    (single-run operations: bisect and slice assignment, far cheaper than numpy calls on tiny
    arrays); each form is built from the other on demand and dropped when the other one
    changes. ``start``, ``length`` and ``cols`` always read as int64 arrays.

    Parameters
    ----------
    offset_mask : tuple of bool
        One entry per value column: True for offset columns (grow by one per block).
    """

    __slots__ = ("offset_mask", "_a", "_l", "_kind")

    def __init__(self, offset_mask: tuple[bool, ...] = ()):
        self.offset_mask = tuple(offset_mask)
        #: column layout code for the inlined single-run paths (4: generic)
        self._kind = _KINDS.get(self.offset_mask, 4)
        #: numpy form: [start, length, col0, ...] (None when stale)
        self._a: list | None = None
        #: list form: [start, length, col0, ...] as Python lists (None when stale)
        self._l: list | None = [[] for _ in range(2 + len(self.offset_mask))]

    # ------------------------------------------------------------------ the two forms
    def _arr(self) -> list:
        a = self._a
        if a is None:
            a = self._a = [np.array(x, dtype=np.int64) if x else EMPTY for x in self._l]
        return a

    def _lst(self) -> list:
        lst = self._l
        if lst is None:
            lst = self._l = [x.tolist() for x in self._a]
        return lst

    def _set_arr(self, a: list) -> None:
        self._a = a
        self._l = None

    @property
    def start(self) -> np.ndarray:
        """First key of each run."""
        return self._arr()[0]

    @start.setter
    def start(self, v) -> None:
        a = list(self._arr())
        a[0] = _i64(v)
        self._set_arr(a)

    @property
    def length(self) -> np.ndarray:
        """Length of each run, in keys."""
        return self._arr()[1]

    @length.setter
    def length(self, v) -> None:
        a = list(self._arr())
        a[1] = _i64(v)
        self._set_arr(a)

    @property
    def cols(self) -> list:
        """The value columns of the runs (one array per column)."""
        return self._arr()[2:]

    @cols.setter
    def cols(self, v) -> None:
        a = list(self._arr())
        self._set_arr(a[:2] + [_i64(c) for c in v])

    def lists(self) -> list:
        """The list form ``[start, length, col0, ...]`` (do not modify)."""
        return self._lst()

    def is_list_form(self) -> bool:
        """Whether the list form is current (single-run operations are cheap)."""
        return self._l is not None

    def __len__(self) -> int:
        if self._l is not None:
            return len(self._l[0])
        return int(self._a[0].shape[0])

    @property
    def end(self) -> np.ndarray:
        """One past the last key of each run."""
        return self.start + self.length

    def copy(self) -> "RunMap":
        """An independent copy of the map."""
        m = RunMap(self.offset_mask)
        if self._l is not None:
            m._l = [list(x) for x in self._l]
            m._a = None
        else:
            m._set_arr([x.copy() for x in self._a])
        return m

    def total(self) -> int:
        """Total length of all runs."""
        if self._l is not None:
            return sum(self._l[1])
        return int(self._a[1].sum())

    # ------------------------------------------------------------------ queries
    def window(self, lo: int, hi: int) -> tuple[int, int]:
        """Indices ``[i0, i1)`` of the runs overlapping ``[lo, hi)``."""
        if self._l is not None:
            s = self._l[0]
            i1 = bisect_left(s, hi)
            i0 = bisect_right(s, lo) - 1
            if i0 < 0 or s[i0] + self._l[1][i0] <= lo:
                i0 += 1
            return i0, max(i0, i1)
        s = self._a[0]
        i1 = int(s.searchsorted(hi, side="left"))
        i0 = int(s.searchsorted(lo, side="right")) - 1
        if i0 < 0 or s[i0] + self._a[1][i0] <= lo:
            i0 += 1
        return i0, max(i0, i1)

    def _cut(self, r: tuple, lo: int, ln: int) -> tuple:
        """Row ``r`` cut to start at ``lo`` with length ``ln`` (offset columns follow)."""
        d = lo - r[0]
        if not d:
            return (lo, ln, *r[2:])
        m = self.offset_mask
        if m == (True, False):
            return (lo, ln, r[2] + d, r[3])
        if m == (True,):
            return (lo, ln, r[2] + d)
        return (lo, ln, *[v + d if off else v for v, off in zip(r[2:], m, strict=True)])

    def rows(self, lo: int, hi: int) -> list:
        """Runs overlapping ``[lo, hi)`` clipped to it (gaps left out), as row tuples
        ``(start, length, col0, ...)``."""
        L = self._l
        if L is not None:
            S = L[0]
            if not S:
                return []
            i1 = bisect_left(S, hi)
            i0 = bisect_right(S, lo) - 1
            if i0 < 0 or S[i0] + L[1][i0] <= lo:
                i0 += 1
            if i1 <= i0:
                return []
            if i1 - i0 == 1:
                # one run (the common case): no slices, no calls
                s0 = S[i0]
                n0 = L[1][i0]
                k = self._kind
                if k < 4:
                    a = lo if s0 < lo else s0
                    e = s0 + n0
                    b = hi if e > hi else e
                    if k == 0:
                        return [(a, b - a, L[2][i0] + (a - s0), L[3][i0])]
                    if k == 1:
                        return [(a, b - a, L[2][i0])]
                    if k == 2:
                        return [(a, b - a, L[2][i0] + (a - s0))]
                    return [(a, b - a)]
                if len(L) == 4:
                    r = (s0, n0, L[2][i0], L[3][i0])
                elif len(L) == 3:
                    r = (s0, n0, L[2][i0])
                else:
                    r = tuple(c[i0] for c in L)
                if s0 < lo:
                    r = self._cut(r, lo, s0 + n0 - lo)
                e = r[0] + r[1]
                if e > hi:
                    r = (r[0], hi - r[0], *r[2:])
                return [r]
            out = list(zip(*[c[i0:i1] for c in L], strict=True))
        else:
            i0, i1 = self.window(lo, hi)
            if i1 <= i0:
                return []
            out = list(zip(*[c[i0:i1].tolist() for c in self._a], strict=True))
        r = out[0]
        if r[0] < lo:
            r = out[0] = self._cut(r, lo, r[0] + r[1] - lo)
        r = out[-1]
        e = r[0] + r[1]
        if e > hi:
            out[-1] = (r[0], hi - r[0], *r[2:])
        return out

    def get(self, lo: int, hi: int):
        """Runs clipped to ``[lo, hi)`` (gaps left out): ``(start, length, cols)`` copies."""
        if self._l is not None:
            rows = self.rows(lo, hi)
            k = 2 + len(self.offset_mask)
            if not rows:
                return EMPTY, EMPTY, [EMPTY for _ in self.offset_mask]
            cols = [np.array(c, dtype=np.int64) for c in zip(*rows, strict=True)]
            return cols[0], cols[1], cols[2:k]
        i0, i1 = self.window(lo, hi)
        a = self._a
        s = a[0][i0:i1].copy()
        ln = a[1][i0:i1].copy()
        cols = [c[i0:i1].copy() for c in a[2:]]
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

    # ------------------------------------------------------------------ updates
    def _use_list(self, k: int) -> bool:
        return k <= SMALL_INSERT and (self._l is not None or len(self) <= LIST_MAX)

    def splice_rows(self, lo: int, hi: int, rows: list) -> int:
        """:meth:`splice` with the new runs as row tuples ``(start, length, col0, ...)``."""
        if self._use_list(len(rows)):
            return self._splice_l(lo, hi, rows)
        c = self._row_arrays(rows)
        return self._splice_np(lo, hi, c[0], c[1], c[2:])

    def _row_arrays(self, rows: list) -> list:
        """Row tuples as int64 column arrays ``[start, length, col0, ...]``."""
        if not rows:
            return [EMPTY for _ in range(2 + len(self.offset_mask))]
        return [np.array(x, dtype=np.int64) for x in zip(*rows, strict=True)]

    def _splice_l(self, lo: int, hi: int, new_rows: list) -> int:
        L = self._l
        if L is None:
            L = self._lst()
        S, N = L[0], L[1]
        n = len(S)
        i1 = bisect_left(S, hi)
        i0 = bisect_right(S, lo) - 1
        if i0 < 0 or S[i0] + N[i0] <= lo:
            i0 += 1
        if i1 < i0:
            i1 = i0
        if i1 == i0 and not new_rows:
            return 0  # nothing there, nothing to insert
        if lo < hi:
            if not new_rows and i1 - i0 == 1:
                self._cut_out(L, i0, lo, hi)
                return 1
            if i1 == i0 and len(new_rows) == 1:
                self._insert_gap(L, i0, new_rows[0])
                return 1
            if (
                i1 - i0 == 1
                and self._kind == 1
                and len(new_rows) == 1
                and self._overwrite_const(L, i0, lo, hi, new_rows[0])
            ):
                return 2
        lo_i = i0 - 1 if i0 > 0 else 0
        hi_i = i1 + 1 if i1 < n else n
        w = list(zip(*[c[lo_i:hi_i] for c in L], strict=True))
        a = i0 - lo_i
        if i1 > i0:
            b = i1 - lo_i
            first = w[a]
            last = w[b - 1]
            mid = []
            if first[0] < lo:
                mid.append((first[0], lo - first[0], *first[2:]))
            mid += new_rows
            e = last[0] + last[1]
            if e > hi:
                mid.append(self._cut(last, hi, e - hi))
            w[a:b] = mid
        elif new_rows:
            w[a:a] = new_rows
        else:
            return 0
        if len(w) > 1:
            w = merge_list_runs(w, self.offset_mask)
        if w:
            for x, c in zip(L, zip(*w, strict=True), strict=True):
                x[lo_i:hi_i] = c
        else:
            for x in L:
                del x[lo_i:hi_i]
        self._a = None
        return (i1 - i0) + len(new_rows)

    def _overwrite_const(self, L: list, j: int, lo: int, hi: int, r: tuple) -> bool:
        """One-constant-column map: overwrite ``[lo, hi)`` inside run ``j`` with row ``r``
        covering it, in place, when no neighbouring run merges with the pieces (what the
        general splice then computes); False (nothing done) otherwise."""
        S, N, C = L
        s0 = S[j]
        e0 = s0 + N[j]
        if r[0] != lo or r[1] != hi - lo or s0 > lo or e0 < hi:
            return False
        c = r[2]
        c0 = C[j]
        first_c = c0 if s0 < lo else c
        last_c = c0 if e0 > hi else c
        if j > 0 and S[j - 1] + N[j - 1] == s0 and C[j - 1] == first_c:
            return False
        if j + 1 < len(S) and S[j + 1] == e0 and C[j + 1] == last_c:
            return False
        self._a = None
        if c == c0:  # the pieces merge back into run j: unchanged
            return True
        ss, ns, cs = [lo], [hi - lo], [c]
        if s0 < lo:
            ss.insert(0, s0)
            ns.insert(0, lo - s0)
            cs.insert(0, c0)
        if e0 > hi:
            ss.append(hi)
            ns.append(e0 - hi)
            cs.append(c0)
        S[j : j + 1] = ss
        N[j : j + 1] = ns
        C[j : j + 1] = cs
        return True

    def _cut_out(self, L: list, j: int, lo: int, hi: int) -> None:
        """Remove ``[lo, hi)`` (``lo < hi``) from run ``j``, the only run it overlaps (the
        pieces left cannot merge with anything: the map is kept maximally merged)."""
        S, N = L[0], L[1]
        s0 = S[j]
        e0 = s0 + N[j]
        if s0 >= lo and e0 <= hi:
            for x in L:
                del x[j]
        elif s0 < lo and e0 > hi:
            N[j] = lo - s0
            d = hi - s0
            S.insert(j + 1, hi)
            N.insert(j + 1, e0 - hi)
            for x, off in zip(L[2:], self.offset_mask, strict=True):
                x.insert(j + 1, x[j] + d if off else x[j])
        elif s0 < lo:
            N[j] = lo - s0
        else:
            d = hi - s0
            S[j] = hi
            N[j] = e0 - hi
            for x, off in zip(L[2:], self.offset_mask, strict=True):
                if off:
                    x[j] += d
        self._a = None

    def _insert_gap(self, L: list, j: int, r: tuple) -> None:
        """Insert row ``r`` into the gap before run ``j``, merging with its neighbours."""
        S, N = L[0], L[1]
        n = len(S)
        k = self._kind
        # jp: the previous run continues into r; jn: r continues into the next run (the
        # joiners of merge_list_runs, inlined per column layout)
        p = j - 1
        if k == 0:
            c2, c3 = L[2], L[3]
            jp = j > 0 and S[p] + N[p] == r[0] and c2[p] + N[p] == r[2] and c3[p] == r[3]
            jn = j < n and r[0] + r[1] == S[j] and r[2] + r[1] == c2[j] and r[3] == c3[j]
        elif k == 1:
            c2 = L[2]
            jp = j > 0 and S[p] + N[p] == r[0] and c2[p] == r[2]
            jn = j < n and r[0] + r[1] == S[j] and r[2] == c2[j]
        elif k == 2:
            c2 = L[2]
            jp = j > 0 and S[p] + N[p] == r[0] and c2[p] + N[p] == r[2]
            jn = j < n and r[0] + r[1] == S[j] and r[2] + r[1] == c2[j]
        elif k == 3:
            jp = j > 0 and S[p] + N[p] == r[0]
            jn = j < n and r[0] + r[1] == S[j]
        else:
            join = _joiner(self.offset_mask)
            jp = j > 0 and join(tuple(x[j - 1] for x in L), r)
            jn = j < n and join(r, tuple(x[j] for x in L))
        if jp and jn:
            N[j - 1] += r[1] + N[j]
            for x in L:
                del x[j]
        elif jp:
            N[j - 1] += r[1]
        elif jn:
            S[j] = r[0]
            N[j] += r[1]
            for k in range(2, len(L)):
                L[k][j] = r[k]
        else:
            for x, v in zip(L, r, strict=True):
                x.insert(j, v)
        self._a = None

    def splice(self, lo: int, hi: int, new_start=EMPTY, new_len=EMPTY, new_cols=None) -> int:
        """Replace everything in ``[lo, hi)`` with the given runs (which lie inside it).

        Returns
        -------
        int
            Number of records touched (removed, cut or inserted).
        """
        if new_cols is None:
            new_cols = [EMPTY for _ in self.offset_mask]
        k = len(new_start)
        if self._use_list(k):
            if k:
                cols = [
                    x.tolist() if isinstance(x, np.ndarray) else list(x)
                    for x in (new_start, new_len, *new_cols)
                ]
                rows = list(zip(*cols, strict=True))
            else:
                rows = []
            return self._splice_l(int(lo), int(hi), rows)
        return self._splice_np(lo, hi, new_start, new_len, new_cols)

    def _splice_np(self, lo: int, hi: int, new_start, new_len, new_cols) -> int:
        i0, i1 = self.window(lo, hi)
        a = self._arr()
        s, ln, cols = a[0], a[1], a[2:]
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
        self._set_arr(
            [
                np.concatenate([s[:lo_i], w_s, s[hi_i:]]),
                np.concatenate([ln[:lo_i], w_l, ln[hi_i:]]),
            ]
            + [np.concatenate([c[:lo_i], wc, c[hi_i:]]) for c, wc in zip(cols, w_c, strict=False)]
        )
        return (i1 - i0) + int(_i64(new_start).shape[0])

    def assign_many(self, new_start, new_len, new_cols) -> int:
        """Overwrite several disjoint ranges with the given runs (one run per range)."""
        return self.replace_ranges(new_start, new_len, new_start, new_len, new_cols)

    def replace_rows(self, clear: list, rows: list) -> int:
        """:meth:`replace_ranges` with Python lists: ``clear`` of ``(start, length)`` (disjoint),
        ``rows`` of ``(start, length, col0, ...)`` each inside one cleared range."""
        k = len(clear)
        if k == 0 or (not rows and not len(self)):
            return 0
        if k == 1:
            s, n = clear[0]
            return self.splice_rows(s, s + n, rows)
        if not self._use_list(len(rows) + k):
            cs = np.array([c[0] for c in clear], dtype=np.int64)
            cn = np.array([c[1] for c in clear], dtype=np.int64)
            c = self._row_arrays(rows)
            return self.replace_ranges(cs, cn, c[0], c[1], c[2:])
        clear = sorted(clear)
        rows = sorted(rows)
        i0, i1 = self.window(clear[0][0], clear[-1][0] + clear[-1][1])
        touched = (i1 - i0) + len(rows)
        j = 0
        nr = len(rows)
        for s, n in clear:
            e = s + n
            sub = []
            while j < nr and rows[j][0] < e:
                sub.append(rows[j])
                j += 1
            self._splice_l(s, e, sub)
        return touched

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
        if self._use_list(k + new_start.shape[0]):
            clear = list(zip(clear_start.tolist(), clear_len.tolist(), strict=True))
            cols = [new_start.tolist(), new_len.tolist(), *[c.tolist() for c in new_cols]]
            rows = list(zip(*cols, strict=True)) if new_start.shape[0] else []
            return self.replace_rows(clear, rows)
        order = np.argsort(clear_start, kind="stable")
        clear_start, clear_len = clear_start[order], clear_len[order]
        lo = int(clear_start[0])
        hi = int(clear_start[-1] + clear_len[-1])
        i0, i1 = self.window(lo, hi)
        a = self._arr()
        ws, wl = a[0][i0:i1], a[1][i0:i1]
        wc = [c[i0:i1] for c in a[2:]]
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
        self._splice_np(lo, hi, all_s, all_l, all_c)
        return (i1 - i0) + int(new_start.shape[0])
