"""Compiled batch kernels of the built-in designs (numba, ``cache=True``).

Each design has one kernel ``*_batch(op, pfn, npages, mapping, index, flag, st_mapping,
st_index, st_order, stats) -> int`` that applies the operations in order, page by page, and
returns the struct pages it wrote.  It is a compiled loop over the operations and over the
pages of each entry, so it has exactly the sequential semantics by construction, and a hot
page costs no more than distinct pages.  Counters and raw warning counts are kept in local
variables (registers) during the loop and added to ``stats`` (laid out as in
:mod:`sim.memmap.layout`) at the end.

Each design also has a single-operation kernel ``*_one(op, pfn, npages, mapping, index,
flag, st_mapping, st_index, st_order, stats) -> int`` with scalar operation arguments (the
per-fault path of :meth:`MemMap.associate`): it validates the entry (returns ``-1`` if it is
out of the device, misaligned or has a bad ``npages``/``mapping``) and runs the batch loop on
that one operation.

**Gauges.**  The kernels keep the at-any-moment statistics of ``stats`` (the share-degree
histogram, whose bin 0 is the flag designs' residue, and the folio designs' phantom count)
up to date at every state transition: a page's old contribution is removed and its new one
added whenever its words change.  Reading them is O(1); :mod:`sim.memmap.scan` recomputes
them by scanning, as the check.

**Speed.**  Random operations over a large device are bound by cache misses on ``mapping``
and ``index``; the loops prefetch the words of the operation :data:`PREFETCH_AHEAD` rows
ahead.  In the folio designs the 511 tail pages of a compound folio are (0, 0) by
construction (every operation on a page of a compound block acts on its head), so the split
on the final put of an order-9 folio writes only the head, and ``prep_compound_page`` over a
block that was order 0 first checks (vectorised, read only) whether any tail page is set
before clearing them; the ``page_updates`` counter still counts the 512 struct pages the
kernel writes.

The kernels do not validate batch input (:class:`~sim.memmap.MemMap` does).  They are
written independently of the Python reference (:mod:`sim.memmap.reference`), which is the
oracle the tests compare them with.  Page refcounts are not modelled, so the ``trunc &&
refcount > 1`` WARN cannot fire and ``trunc`` changes nothing.
"""

from __future__ import annotations

import numpy as np

from sim.constants import PMD_NR_PAGES, PMD_ORDER
from sim.jit import njit
from sim.memmap.layout import (
    G_PHANTOM,
    H_BASE,
    HIST_BINS,
    S_ASSOCIATE_CALLS,
    S_DISASSOCIATE_CALLS,
    S_FLAG_CLEAR,
    S_FLAG_SET,
    S_OWNER_OVERWRITTEN,
    S_PAGE_UPDATES,
    S_PAGES_RESET,
    S_SHARE_DEC,
    S_SHARE_INC,
    W_FOLIO_INIT_ORDER,
    W_FOREIGN_MAPPING,
    W_MAPPING_SET,
    W_ORDER_MISMATCH,
    W_SHARE_ZERO,
)
from sim.prefetch import prefetch_write

__all__ = [
    "single_owner_batch",
    "cow_index_batch",
    "page_share_batch",
    "folio_share_batch",
    "folio_share_reset_batch",
    "single_owner_one",
    "cow_index_one",
    "page_share_one",
    "folio_share_one",
    "folio_share_reset_one",
    "GAUGED_KERNELS",
    "PREFETCH_AHEAD",
    "hist_top",
]

_FLAG = np.int64(-1)
_TAG = np.int64(-2)

#: Rows ahead whose memmap words the batch loops prefetch.
PREFETCH_AHEAD = 12


_prefetch = prefetch_write  # the kernels prefetch the words they are about to store


@njit(cache=True, inline="always")
def _hbin(degree):
    """Slot in ``stats`` of the histogram bin of ``degree`` (overflow for >= HIST_BINS or < 0)."""
    if degree >= 0 and degree < HIST_BINS:
        return H_BASE + degree
    return H_BASE + HIST_BINS


@njit(cache=True, inline="always")
def _flush(
    stats,
    share_inc,
    share_dec,
    flag_set,
    flag_clear,
    overwritten,
    reset,
    calls_a,
    calls_d,
    updates,
    w_set,
    w_foreign,
    w_zero,
    w_order,
    w_init,
):
    stats[S_SHARE_INC] += share_inc
    stats[S_SHARE_DEC] += share_dec
    stats[S_FLAG_SET] += flag_set
    stats[S_FLAG_CLEAR] += flag_clear
    stats[S_OWNER_OVERWRITTEN] += overwritten
    stats[S_PAGES_RESET] += reset
    stats[S_ASSOCIATE_CALLS] += calls_a
    stats[S_DISASSOCIATE_CALLS] += calls_d
    stats[S_PAGE_UPDATES] += updates
    stats[W_MAPPING_SET] += w_set
    stats[W_FOREIGN_MAPPING] += w_foreign
    stats[W_SHARE_ZERO] += w_zero
    stats[W_ORDER_MISMATCH] += w_order
    stats[W_FOLIO_INIT_ORDER] += w_init


@njit(cache=True, inline="always")
def _valid_one(pfn, npages, mapping, device_npages):
    """The checks of ``MemMap._check_one`` (the Python side builds the message)."""
    if npages != 1 and npages != PMD_NR_PAGES:
        return False
    if pfn < 0 or pfn > device_npages - npages:
        return False
    if npages == PMD_NR_PAGES and pfn % PMD_NR_PAGES != 0:
        return False
    return mapping >= 1


@njit(cache=True, inline="always")
def _one_row(op, pfn, npages, mapping, index, flag):
    row = np.empty(6, np.int64)
    row[0] = op
    row[1] = pfn
    row[2] = npages
    row[3] = mapping
    row[4] = index
    row[5] = flag
    return row


# ---------------------------------------------------------------------------- single-owner
@njit(cache=True, inline="always")
def _single_owner_loop(op, pfn, npages, mapping, index, flag, st_map, st_idx, stats):
    overwritten = reset = calls_a = calls_d = updates = w_set = w_foreign = 0
    nops = op.shape[0]
    for k in range(nops):
        if k + PREFETCH_AHEAD < nops:
            q = pfn[k + PREFETCH_AHEAD]
            _prefetch(st_map, q)
            _prefetch(st_idx, q)
        p0 = pfn[k]
        n = npages[k]
        m = mapping[k]
        if op[k] == 0:
            calls_a += 1
            base = index[k]
            for i in range(n):
                p = p0 + i
                if st_map[p] != 0:
                    w_set += 1
                    overwritten += 1
                st_map[p] = m
                st_idx[p] = base + i
        else:
            calls_d += 1
            for i in range(n):
                p = p0 + i
                cur = st_map[p]
                if cur != 0 and cur != m:
                    w_foreign += 1
                if cur != 0 or st_idx[p] != 0:
                    reset += 1
                st_map[p] = 0
                st_idx[p] = 0
        updates += n
    _flush(
        stats, 0, 0, 0, 0, overwritten, reset, calls_a, calls_d, updates, w_set, w_foreign, 0, 0, 0
    )
    return updates


@njit(cache=True)
def single_owner_batch(op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats):
    """The single-owner design over a batch of operations; returns the struct pages written."""
    return _single_owner_loop(op, pfn, npages, mapping, index, flag, st_map, st_idx, stats)


@njit(cache=True)
def single_owner_one(op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats):
    """The single-owner design on one operation; ``-1`` if the entry is invalid."""
    if not _valid_one(pfn, npages, mapping, st_map.shape[0]):
        return -1
    r = _one_row(op, pfn, npages, mapping, index, flag)
    return _single_owner_loop(r[0:1], r[1:2], r[2:3], r[3:4], r[4:5], r[5:6], st_map, st_idx, stats)


# ------------------------------------------------------------------- cow-index / page-share
@njit(cache=True, inline="always")
def _flag_design_loop(op, pfn, npages, mapping, index, flag, st_map, st_idx, stats, post):
    """Shared loop of the two flag designs; ``post`` selects the seed's post-decrement.

    Histogram: every page with the sentinel is in bin ``count`` (bin 0: the residue).
    """
    share_inc = share_dec = flag_set = flag_clear = overwritten = reset = 0
    calls_a = calls_d = updates = w_set = w_foreign = 0
    nops = op.shape[0]
    for k in range(nops):
        if k + PREFETCH_AHEAD < nops:
            q = pfn[k + PREFETCH_AHEAD]
            _prefetch(st_map, q)
            _prefetch(st_idx, q)
        p0 = pfn[k]
        n = npages[k]
        m = mapping[k]
        if op[k] == 0:
            calls_a += 1
            if flag[k] != 0:  # dax_mapping_set_cow() / dax_page_share_get()
                for i in range(n):
                    p = p0 + i
                    cur = st_map[p]
                    if cur != _FLAG:
                        if cur != 0:
                            st_idx[p] = 1
                        st_map[p] = _FLAG
                        flag_set += 1
                    else:
                        stats[_hbin(st_idx[p])] -= 1
                    new = st_idx[p] + 1
                    st_idx[p] = new
                    stats[_hbin(new)] += 1
                share_inc += n
            else:
                base = index[k]
                for i in range(n):
                    p = p0 + i
                    cur = st_map[p]
                    if cur != 0:
                        w_set += 1
                        overwritten += 1
                        if cur == _FLAG:
                            flag_clear += 1
                            stats[_hbin(st_idx[p])] -= 1
                    st_map[p] = m
                    st_idx[p] = base + i
        else:
            calls_d += 1
            for i in range(n):
                p = p0 + i
                cur = st_map[p]
                if cur == _FLAG:
                    old = st_idx[p]
                    new = old - 1
                    st_idx[p] = new
                    share_dec += 1
                    stats[_hbin(old)] -= 1
                    if post:
                        if old != 0:  # "if (page->index-- > 0) continue" (unsigned)
                            stats[_hbin(new)] += 1
                            continue
                    elif new != 0:  # "if (--page->share > 0) continue"
                        stats[_hbin(new)] += 1
                        continue
                    flag_clear += 1
                    reset += 1
                else:
                    if cur != 0 and cur != m:
                        w_foreign += 1
                    if cur != 0 or st_idx[p] != 0:
                        reset += 1
                st_map[p] = 0
                st_idx[p] = 0
        updates += n
    _flush(
        stats,
        share_inc,
        share_dec,
        flag_set,
        flag_clear,
        overwritten,
        reset,
        calls_a,
        calls_d,
        updates,
        w_set,
        w_foreign,
        0,
        0,
        0,
    )
    return updates


@njit(cache=True)
def cow_index_batch(op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats):
    """The cow-index design over a batch of operations; returns the struct pages written."""
    return _flag_design_loop(op, pfn, npages, mapping, index, flag, st_map, st_idx, stats, True)


@njit(cache=True)
def page_share_batch(op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats):
    """The page-share design over a batch of operations; returns the struct pages written."""
    return _flag_design_loop(op, pfn, npages, mapping, index, flag, st_map, st_idx, stats, False)


@njit(cache=True)
def cow_index_one(op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats):
    """The cow-index design on one operation; ``-1`` if the entry is invalid."""
    if not _valid_one(pfn, npages, mapping, st_map.shape[0]):
        return -1
    r = _one_row(op, pfn, npages, mapping, index, flag)
    return _flag_design_loop(
        r[0:1], r[1:2], r[2:3], r[3:4], r[4:5], r[5:6], st_map, st_idx, stats, True
    )


@njit(cache=True)
def page_share_one(op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats):
    """The page-share design on one operation; ``-1`` if the entry is invalid."""
    if not _valid_one(pfn, npages, mapping, st_map.shape[0]):
        return -1
    r = _one_row(op, pfn, npages, mapping, index, flag)
    return _flag_design_loop(
        r[0:1], r[1:2], r[2:3], r[3:4], r[4:5], r[5:6], st_map, st_idx, stats, False
    )


# ------------------------------------------------------------ folio-share (v6.15+) / reset
@njit(cache=True, inline="always")
def _tails_set(st_map, st_idx, head):
    """True if any of the 511 pages after ``head`` is not (0, 0) (branch-free, vectorised)."""
    acc = np.int64(0)
    for p in range(head + 1, head + PMD_NR_PAGES):
        acc |= st_map[p] | st_idx[p]
    return acc != 0


@njit(cache=True, inline="always")
def _folio_loop(
    op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats, reset_share
):
    """The v6.15+ folio path; ``reset_share`` zeroes the share word on every final put.

    Gauges: a folio head with ``mapping == 0`` and ``index != 0`` is Shared(index), counted in
    the histogram with its pages ``w`` (512 for order 9); a head with the phantom tag is a
    phantom (its ``index`` is never 0).  Owned and clean folios count in neither.
    """
    share_inc = share_dec = flag_set = flag_clear = overwritten = reset = 0
    calls_a = calls_d = updates = w_set = w_zero = w_order = w_init = phantom = 0
    nops = op.shape[0]
    for k in range(nops):
        if k + PREFETCH_AHEAD < nops:
            q = pfn[k + PREFETCH_AHEAD]
            _prefetch(st_order, q >> 9)
            _prefetch(st_map, q)
            _prefetch(st_idx, q)
        pfn_k = pfn[k]
        blk = pfn_k >> 9
        forder = st_order[blk]
        if forder != 0:  # page_folio(): the head of a compound folio
            head = blk << 9
            w = PMD_NR_PAGES
        else:
            head = pfn_k
            w = 1
        cur = st_map[head]
        idx = st_idx[head]
        owned = cur > 0
        shared = cur <= 0 and idx != 0  # dax_folio_is_shared(); the tag reads NULL
        if op[k] == 0:
            calls_a += 1
            eorder = PMD_ORDER if npages[k] == PMD_NR_PAGES else 0
            if flag[k] != 0 and (owned or shared):
                if owned:  # dax_folio_make_shared(): mapping = NULL, share = 1
                    st_map[head] = 0
                    cur = 0
                    idx = 1
                    flag_set += 1
                elif cur == 0:
                    stats[_hbin(idx)] -= w
                if idx == 0:
                    w_zero += 1
                if eorder != forder:
                    w_order += 1
                idx += 1
                st_idx[head] = idx
                if cur == 0:  # a phantom (tag) stays a phantom with a larger stale word
                    stats[_hbin(idx)] += w
                share_inc += 1
                updates += 1
                continue
            if owned:
                w_set += 1
                overwritten += 1
            elif shared:  # Shared(k) re-owned: no WARN, the count is lost
                overwritten += 1
                flag_clear += 1
                if cur == 0:
                    stats[_hbin(idx)] -= w
                else:
                    phantom -= 1
            if eorder != 0:  # prep_compound_page(): the aligned pfn becomes the head
                if forder != 0:  # dax_folio_init(): WARN_ON_ONCE(folio_order(folio))
                    w_init += 1  # (a compound folio's tails are (0, 0) already)
                elif _tails_set(st_map, st_idx, pfn_k):
                    for p in range(pfn_k + 1, pfn_k + PMD_NR_PAGES):
                        c = st_map[p]
                        x = st_idx[p]
                        if c == _TAG:
                            phantom -= 1
                        elif c == 0 and x != 0:
                            stats[_hbin(x)] -= 1
                        st_map[p] = 0
                        st_idx[p] = 0
                st_order[blk] = 9
                updates += PMD_NR_PAGES
            else:
                if forder != 0:
                    w_init += 1
                updates += 1
            st_map[head] = mapping[k]
            st_idx[head] = index[k]
            continue
        # dax_disassociate_entry() -> dax_folio_put(); trunc is ignored
        calls_d += 1
        if shared:
            ref = idx - 1
            st_idx[head] = ref
            share_dec += 1
            if cur == 0:
                stats[_hbin(idx)] -= w
            if ref != 0:
                if cur == 0:
                    stats[_hbin(ref)] += w
                updates += 1
                continue
            flag_clear += 1
            if cur != 0:
                phantom -= 1
            idx = 0
        if forder == 0:
            if reset_share or idx == 0:
                if cur != 0 or idx != 0 or shared:
                    reset += 1
                st_map[head] = 0
                st_idx[head] = 0
            else:  # order-0 owner put: mapping = NULL, index stale -> phantom Shared(index)
                st_map[head] = _TAG
                flag_set += 1
                phantom += 1
            updates += 1
            continue
        # split back into 512 order-0 folios; the tails are (0, 0) already
        st_order[blk] = 0
        st_map[head] = 0
        st_idx[head] = 0
        reset += PMD_NR_PAGES
        updates += PMD_NR_PAGES
    _flush(
        stats,
        share_inc,
        share_dec,
        flag_set,
        flag_clear,
        overwritten,
        reset,
        calls_a,
        calls_d,
        updates,
        w_set,
        0,
        w_zero,
        w_order,
        w_init,
    )
    stats[G_PHANTOM] += phantom
    return updates


@njit(cache=True)
def folio_share_batch(op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats):
    """The folio-share design over a batch of operations; returns the struct pages written."""
    return _folio_loop(
        op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats, False
    )


@njit(cache=True)
def folio_share_reset_batch(op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats):
    """The folio-share-reset design over a batch of operations; returns the struct pages written."""
    return _folio_loop(op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats, True)


@njit(cache=True)
def folio_share_one(op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats):
    """The folio-share design on one operation; ``-1`` if the entry is invalid."""
    if not _valid_one(pfn, npages, mapping, st_map.shape[0]):
        return -1
    r = _one_row(op, pfn, npages, mapping, index, flag)
    return _folio_loop(
        r[0:1], r[1:2], r[2:3], r[3:4], r[4:5], r[5:6], st_map, st_idx, st_order, stats, False
    )


@njit(cache=True)
def folio_share_reset_one(op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats):
    """The folio-share-reset design on one operation; ``-1`` if the entry is invalid."""
    if not _valid_one(pfn, npages, mapping, st_map.shape[0]):
        return -1
    r = _one_row(op, pfn, npages, mapping, index, flag)
    return _folio_loop(
        r[0:1], r[1:2], r[2:3], r[3:4], r[4:5], r[5:6], st_map, st_idx, st_order, stats, True
    )


@njit(cache=True)
def hist_top(stats):
    """Largest degree with a non-zero exact histogram bin in ``stats``, or -1."""
    for d in range(HIST_BINS - 1, -1, -1):
        if stats[H_BASE + d] != 0:
            return d
    return -1


#: The built-in batch kernels, which keep the gauges, mapped to their single-op kernels.
GAUGED_KERNELS = {
    single_owner_batch: single_owner_one,
    cow_index_batch: cow_index_one,
    page_share_batch: page_share_one,
    folio_share_batch: folio_share_one,
    folio_share_reset_batch: folio_share_reset_one,
}
