"""Compiled batch kernels of the built-in designs (numba, ``cache=True``).

Each design has one kernel ``*_batch(op, pfn, npages, mapping, index, flag, st_mapping,
st_index, st_order, stats) -> int`` that applies the operations in order, page by page, and
returns the struct pages it wrote.  It is a compiled loop over the operations and over the
pages of each entry, so it has exactly the sequential semantics by construction, and a hot
page costs no more than distinct pages.  Counters and raw warning counts are kept in local
variables (registers) during the loop and added to ``stats`` (laid out as in
:mod:`sim.memmap.layout`) at the end; :class:`~sim.memmap.MemMap` calls the same kernel on
one-element arrays for a single operation.

The kernels do not validate their input (:class:`~sim.memmap.MemMap` does).  They are
written independently of the Python reference (:mod:`sim.memmap.reference`), which is the
oracle the tests compare them with.  Page refcounts are not modelled, so the ``trunc &&
refcount > 1`` WARN cannot fire and ``trunc`` changes nothing.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.memmap.layout import (
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

__all__ = [
    "single_owner_batch",
    "cow_index_batch",
    "page_share_batch",
    "folio_share_batch",
    "folio_share_reset_batch",
]

_FLAG = np.int64(-1)
_TAG = np.int64(-2)


@njit(cache=True, inline="always")
def _flush(stats, share_inc, share_dec, flag_set, flag_clear, overwritten, reset, calls_a,
           calls_d, updates, w_set, w_foreign, w_zero, w_order, w_init):
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


# ---------------------------------------------------------------------------- single-owner
@njit(cache=True)
def single_owner_batch(op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats):
    overwritten = reset = calls_a = calls_d = updates = w_set = w_foreign = 0
    for k in range(op.shape[0]):
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
    _flush(stats, 0, 0, 0, 0, overwritten, reset, calls_a, calls_d, updates, w_set, w_foreign,
           0, 0, 0)
    return updates


# ------------------------------------------------------------------- cow-index / page-share
@njit(cache=True, inline="always")
def _flag_design_batch(op, pfn, npages, mapping, index, flag, st_map, st_idx, stats, post):
    """Shared loop of the two flag designs; ``post`` selects the seed's post-decrement."""
    share_inc = share_dec = flag_set = flag_clear = overwritten = reset = 0
    calls_a = calls_d = updates = w_set = w_foreign = 0
    for k in range(op.shape[0]):
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
                    st_idx[p] += 1
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
                    if post:
                        if old != 0:  # "if (page->index-- > 0) continue" (unsigned)
                            continue
                    elif new != 0:  # "if (--page->share > 0) continue"
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
    _flush(stats, share_inc, share_dec, flag_set, flag_clear, overwritten, reset, calls_a,
           calls_d, updates, w_set, w_foreign, 0, 0, 0)
    return updates


@njit(cache=True)
def cow_index_batch(op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats):
    return _flag_design_batch(op, pfn, npages, mapping, index, flag, st_map, st_idx, stats,
                              True)


@njit(cache=True)
def page_share_batch(op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats):
    return _flag_design_batch(op, pfn, npages, mapping, index, flag, st_map, st_idx, stats,
                              False)


# ------------------------------------------------------------ folio-share (v6.15+) / reset
@njit(cache=True, inline="always")
def _folio_batch(op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats,
                 reset_share):
    share_inc = share_dec = flag_set = flag_clear = overwritten = reset = 0
    calls_a = calls_d = updates = w_set = w_zero = w_order = w_init = 0
    for k in range(op.shape[0]):
        pfn_k = pfn[k]
        blk = pfn_k >> 9
        if st_order[blk] != 0:  # page_folio(): the head of a compound folio
            head = blk << 9
            forder = 9
        else:
            head = pfn_k
            forder = 0
        cur = st_map[head]
        owned = cur > 0
        shared = cur <= 0 and st_idx[head] != 0  # dax_folio_is_shared(); the tag reads NULL
        if op[k] == 0:
            calls_a += 1
            eorder = 9 if npages[k] == 512 else 0
            if flag[k] != 0 and (owned or shared):
                if owned:  # dax_folio_make_shared()
                    st_map[head] = 0
                    st_idx[head] = 1
                    flag_set += 1
                if st_idx[head] == 0:
                    w_zero += 1
                if eorder != forder:
                    w_order += 1
                st_idx[head] += 1
                share_inc += 1
                updates += 1
                continue
            if owned:
                w_set += 1
                overwritten += 1
            elif shared:  # Shared(k) re-owned: no WARN, the count is lost
                overwritten += 1
                flag_clear += 1
            if forder != 0:  # dax_folio_init(): WARN_ON_ONCE(folio_order(folio))
                w_init += 1
            if eorder != 0:  # prep_compound_page(): the aligned pfn becomes the head
                st_order[blk] = 9
                for p in range(pfn_k + 1, pfn_k + 512):
                    st_map[p] = 0
                    st_idx[p] = 0
                head = pfn_k
                updates += 512
            else:
                updates += 1
            st_map[head] = mapping[k]
            st_idx[head] = index[k]
            continue
        # dax_disassociate_entry() -> dax_folio_put(); trunc is ignored
        calls_d += 1
        if shared:
            ref = st_idx[head] - 1
            st_idx[head] = ref
            share_dec += 1
            if ref != 0:
                updates += 1
                continue
            flag_clear += 1
        if forder == 0:
            if reset_share or st_idx[head] == 0:
                if cur != 0 or st_idx[head] != 0 or shared:
                    reset += 1
                st_map[head] = 0
                st_idx[head] = 0
            else:  # order-0 owner put: mapping = NULL, index stale -> phantom Shared(index)
                st_map[head] = _TAG
                flag_set += 1
            updates += 1
            continue
        st_order[blk] = 0  # split back into 512 order-0 folios
        for p in range(head, head + 512):
            st_map[p] = 0
            st_idx[p] = 0
        reset += 512
        updates += 512
    _flush(stats, share_inc, share_dec, flag_set, flag_clear, overwritten, reset, calls_a,
           calls_d, updates, w_set, 0, w_zero, w_order, w_init)
    return updates


@njit(cache=True)
def folio_share_batch(op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats):
    return _folio_batch(op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats,
                        False)


@njit(cache=True)
def folio_share_reset_batch(op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order,
                            stats):
    return _folio_batch(op, pfn, npages, mapping, index, flag, st_map, st_idx, st_order, stats,
                        True)
