"""Incremental association truth: per operation, check only the pages the operation touched.

:func:`sim.hunt.invariants.check_association` rebuilds every live DAX entry and evaluates
every candidate page; that is the *full* check, run at quiescent points (before the teardown
of each episode and after it) and after every operation in paranoid mode. Between those, a
:class:`Tracker` keeps the entry coverage of every page up to date from the operation's own
changes and evaluates the same rule on the *dirty* pages only:

* pages whose struct page an operation wrote or read (the ``struct_page`` lines of its
  :class:`~sim.work.WorkRecord`, delivered through ``DaxFS.record_hook``);
* pages of every DAX entry stored in or erased from an xarray, as it happens
  (``DaxFS.entry_hook``: every store and erase, eviction included, so the coverage is never
  rebuilt or diffed);
* for folio designs, every page of a 512-page block that holds or held an order-9 folio and
  whose folio order changed (``MemMap.folio_orders``).

Coverage per page is kept as three int64 arrays: ``K`` (entries mapping the page), ``MS``
(sum of their mapping ids) and ``D`` (sum of ``index - pfn``; the file index of a page mapped
once is ``D + pfn``), plus per 512-page block the count, mapping sum and index sum of the
entries that *start* in it (how an order-9 folio counts its owners, exactly as the full
check does). The rule applied to a page is the full check's (see
:mod:`sim.hunt.invariants`): a violation found here is then re-derived by the full check, so
the reported :class:`~sim.hunt.invariants.Violation` is the full check's own. The tests rebuild
the coverage from :meth:`DaxFS.entries` after every operation and compare.
"""

from __future__ import annotations

import numpy as np

from sim.dax.xarray_dax import DAX_EMPTY, DAX_PMD, DAX_SHIFT, DAX_ZERO_PAGE
from sim.hunt.invariants import _orders, association_rule
from sim.memmap.layout import FLAG_SENTINEL, PHANTOM_TAG, PMD_NPAGES, PMD_ORDER

__all__ = ["Tracker", "SMALL_SET"]

_I64 = np.int64
#: Dirty sets up to this many pages are evaluated page by page in Python; larger ones as
#: vectors (both apply the same rule; the equivalence tests run both).
SMALL_SET = 48
_DAX_SHIFT = DAX_SHIFT
_DAX_PMD = DAX_PMD
_NOT_REAL = DAX_ZERO_PAGE | DAX_EMPTY  # no struct page: never associated


class Tracker:
    """Entry coverage of every page, kept up to date op by op, and the dirty pages of the
    last operation.

    Parameters
    ----------
    dfs : sim.dax.DaxFS
        The tracker installs itself as ``dfs.record_hook`` and ``dfs.entry_hook``, chaining
        any hook already there, and folds in the entries already present.

    Attributes
    ----------
    nentries : int
        Live real DAX entries (zero and empty entries excluded) over every address_space.
    pages : set of int
        Dirty pages of the current operation.
    warnings : int
        Raw warnings the current operation's work records report.
    """

    def __init__(self, dfs):
        self.dfs = dfs
        mm = dfs.mm
        self.npages = n = mm.npages
        self.rule = association_rule(mm.variant)
        self.folio = self.rule == "folio"
        nb = max(1, -(-n // PMD_NPAGES))
        self.K = np.zeros(n, _I64)
        self.MS = np.zeros(n, _I64)
        self.D = np.zeros(n, _I64)
        self.BK = np.zeros(nb, _I64)
        self.BM = np.zeros(nb, _I64)
        self.BI = np.zeros(nb, _I64)
        self.nentries = 0
        self.pages: set = set()  # dirty pages of the current op
        self.warnings = 0  # raw warnings the current op's records report
        self.prev_order = _orders(mm).tobytes() if self.folio else b""
        # int64 memoryviews of the same buffers: Python-speed scalar reads and updates
        self._k, self._ms, self._d = self.K.data, self.MS.data, self.D.data
        self._bk, self._bm, self._bi = self.BK.data, self.BM.data, self.BI.data
        self._chain = dfs.record_hook
        dfs.record_hook = self._hook
        self._chain_entry = dfs.entry_hook
        e = dfs.entries()  # what is there already (nothing, for a fresh DaxFS)
        for mid, idx, pfn, n in zip(
            *(e[c].tolist() for c in ("mapping", "index", "pfn", "npages")), strict=True
        ):
            self._cover(mid, idx, (pfn << _DAX_SHIFT) | (_DAX_PMD if n > 1 else 0), 1)
        dfs.entry_hook = self._entry if self._chain_entry is None else self._entry_chained

    # ----------------------------------------------------------------- collection
    def _hook(self, wr) -> None:
        keys = wr.lines_written.get("struct_page")
        if keys:
            self.pages.update(keys)
        keys = wr.lines_read.get("struct_page")
        if keys:
            self.pages.update(keys)
        if wr.warnings:
            self.warnings += wr.warnings
        if self._chain is not None:
            self._chain(wr)

    def _entry(self, mid: int, idx: int, old, new) -> None:
        """``DaxFS.entry_hook``: fold one entry store (``old`` None) or erase (``new`` None)."""
        if old is not None and not old & _NOT_REAL:
            self._cover(mid, idx, old, -1)
        if new is not None and not new & _NOT_REAL:
            self._cover(mid, idx, new, 1)

    def _entry_chained(self, mid: int, idx: int, old, new) -> None:
        self._entry(mid, idx, old, new)
        self._chain_entry(mid, idx, old, new)

    def detach(self) -> None:
        """Uninstall the hooks (restoring the chained ones); the tracker stops following the
        DaxFS, and the reference cycle DaxFS -> hook -> tracker -> DaxFS is gone, so a
        finished session is freed at once instead of by the cyclic garbage collector."""
        dfs = self.dfs
        if getattr(dfs.record_hook, "__self__", None) is self:
            dfs.record_hook = self._chain
        if getattr(dfs.entry_hook, "__self__", None) is self:
            dfs.entry_hook = self._chain_entry

    def begin(self) -> None:
        """Start collecting for a new operation."""
        self.pages.clear()
        self.warnings = 0

    def _cover(self, mid: int, idx: int, value: int, sign: int) -> None:
        pfn = value >> _DAX_SHIFT
        b = pfn // PMD_NPAGES
        self._bk[b] += sign
        self._bm[b] += sign * mid
        self._bi[b] += sign * idx
        self.nentries += sign
        if not value & _DAX_PMD:
            self._k[pfn] += sign
            self._ms[pfn] += sign * mid
            self._d[pfn] += sign * (idx - pfn)
            self.pages.add(pfn)
        else:
            end = min(pfn + PMD_NPAGES, self.npages)
            self.K[pfn:end] += sign
            self.MS[pfn:end] += sign * mid
            self.D[pfn:end] += sign * (idx - pfn)
            self.pages.update(range(pfn, end))

    def sync(self) -> None:
        """Mark the blocks whose folio order changed since the last call dirty (entry changes
        are folded in as they happen)."""
        if self.folio:
            order = _orders(self.dfs.mm)
            cur = order.tobytes()
            if cur != self.prev_order:
                prev = np.frombuffer(self.prev_order, dtype=order.dtype)
                for b in np.flatnonzero(order != prev).tolist():
                    self.pages.update(range(b * PMD_NPAGES, min((b + 1) * PMD_NPAGES, self.npages)))
                self.prev_order = cur

    # ----------------------------------------------------------------- evaluation
    def _expand(self, pages) -> np.ndarray:
        """Dirty pages plus, for folio designs, every page of a block holding an order-9
        folio (its head and tails are judged together)."""
        P = np.fromiter(pages, _I64, len(pages))
        P.sort()
        if self.folio:
            order = _orders(self.dfs.mm)
            blk = np.unique(P // PMD_NPAGES)
            big = blk[order[blk] == PMD_ORDER]
            if big.shape[0]:
                extra = (big[:, None] * PMD_NPAGES + np.arange(PMD_NPAGES, dtype=_I64)).ravel()
                P = np.union1d(P, extra[extra < self.npages])
        return P

    def _small_bad(self, pages) -> int:
        """First disagreeing page of a small non-folio-block set (Python loop), or -1."""
        mm = self.dfs.mm
        mp, ix = memoryview(mm.mapping), memoryview(mm.index)
        K, MS, D = self._k, self._ms, self._d
        rule = self.rule
        for p in sorted(pages):
            m = mp[p]
            if m == PHANTOM_TAG:
                m = 0
            i = ix[p]
            k = K[p]
            if k == 0:
                ok = m == 0 and i == 0
            elif k == 1 and m == MS[p] and i == D[p] + p:
                ok = True
            elif rule == "flag":
                ok = m == FLAG_SENTINEL and i == k
            elif rule == "folio":
                ok = m == 0 and i == k
            else:
                ok = False
            if not ok:
                return p
        return -1

    def _vector_bad(self, P: np.ndarray) -> int:
        """First disagreeing page of ``P`` (sorted, unique), vectorised, or -1."""
        mm = self.dfs.mm
        k = self.K[P]
        ms = self.MS[P]
        isum = self.D[P] + P
        m = mm.mapping[P]
        m = np.where(m == PHANTOM_TAG, 0, m)
        i = mm.index[P]
        tail_bad = None
        if self.folio:
            order = _orders(mm)
            pb = P // PMD_NPAGES
            in_big = order[pb] == PMD_ORDER
            if in_big.any():
                is_head = in_big & (P % PMD_NPAGES == 0)
                is_tail = in_big & ~is_head
                k = np.where(is_head, self.BK[pb], np.where(is_tail, 0, k))
                ms = np.where(is_head, self.BM[pb], ms)
                isum = np.where(is_head, self.BI[pb], isum)
                tail_bad = is_tail & ((m != 0) | (i != 0))
                m = np.where(is_tail, 0, m)
                i = np.where(is_tail, 0, i)
        owned_ok = (m == ms) & (i == isum)
        if self.rule == "folio":
            multi = (m == 0) & (i == k)
        elif self.rule == "flag":
            multi = (m == FLAG_SENTINEL) & (i == k)
        else:
            multi = np.zeros(P.shape[0], dtype=bool)
        ok = np.where(k == 0, (m == 0) & (i == 0), np.where(k == 1, owned_ok | multi, multi))
        bad = ~ok if tail_bad is None else (~ok | tail_bad)
        j = np.flatnonzero(bad)
        return int(P[j[0]]) if j.shape[0] else -1

    def first_bad(self, *, small_set: int = SMALL_SET) -> int:
        """Fold the entry changes in, then the first dirty page that disagrees, or -1."""
        self.sync()
        pages = self.pages
        if not pages:
            return -1
        if len(pages) <= small_set and not (self.folio and self._near_big(pages)):
            return self._small_bad(pages)
        return self._vector_bad(self._expand(pages))

    def _near_big(self, pages) -> bool:
        order = _orders(self.dfs.mm)
        return any(order[p // PMD_NPAGES] == PMD_ORDER for p in pages)
