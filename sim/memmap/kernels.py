"""Compiled batch kernels of the built-in designs (numba, ``cache=True``).

Each design has a per-operation function ``*_op(opcode, pfn, npages, mapping, index, flag,
st_mapping, st_index, st_order, stats) -> int`` (struct pages written) and a batch function
``*_batch(op, pfn, npages, mapping, index, flag, st_mapping, st_index, st_order, stats)`` that
calls it for each operation in order.  The batch is therefore a compiled loop over the
operations and over the pages of each entry: exactly the sequential semantics, and a hot page
costs no more than distinct pages.  ``stats`` is laid out as in :mod:`sim.memmap.layout`.

These kernels do not validate their input; :class:`sim.memmap.MemMap` does.  They are written
independently of the Python reference (:mod:`sim.memmap.reference`), which is the oracle.
Page refcounts are not modelled (the ``trunc && refcount > 1`` WARN cannot fire).
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
    "single_owner_op",
    "single_owner_batch",
    "cow_index_op",
    "cow_index_batch",
    "page_share_op",
    "page_share_batch",
    "folio_share_op",
    "folio_share_batch",
    "folio_share_reset_op",
    "folio_share_reset_batch",
]

_FLAG = np.int64(-1)
_TAG = np.int64(-2)


# ---------------------------------------------------------------------------- single-owner
@njit(cache=True, inline="always")
def single_owner_op(opcode, pfn, npages, m, idx, flag, st_map, st_idx, st_order, stats):
    if opcode == 0:
        stats[S_ASSOCIATE_CALLS] += 1
        for i in range(npages):
            p = pfn + i
            if st_map[p] != 0:
                stats[W_MAPPING_SET] += 1
                stats[S_OWNER_OVERWRITTEN] += 1
            st_map[p] = m
            st_idx[p] = idx + i
    else:
        stats[S_DISASSOCIATE_CALLS] += 1
        for i in range(npages):
            p = pfn + i
            cur = st_map[p]
            if cur != 0 and cur != m:
                stats[W_FOREIGN_MAPPING] += 1
            if cur != 0 or st_idx[p] != 0:
                stats[S_PAGES_RESET] += 1
            st_map[p] = 0
            st_idx[p] = 0
    stats[S_PAGE_UPDATES] += npages
    return npages


@njit(cache=True)
def single_owner_batch(op, pfn, npages, m, idx, flag, st_map, st_idx, st_order, stats):
    for k in range(op.shape[0]):
        single_owner_op(
            op[k], pfn[k], npages[k], m[k], idx[k], flag[k], st_map, st_idx, st_order, stats
        )


# ------------------------------------------------------------------- cow-index / page-share
@njit(cache=True, inline="always")
def _flag_associate(pfn, npages, m, idx, flag, st_map, st_idx, stats):
    stats[S_ASSOCIATE_CALLS] += 1
    if flag != 0:
        for i in range(npages):
            p = pfn + i
            cur = st_map[p]
            if cur != _FLAG:
                if cur != 0:
                    st_idx[p] = 1
                st_map[p] = _FLAG
                stats[S_FLAG_SET] += 1
            st_idx[p] += 1
        stats[S_SHARE_INC] += npages
    else:
        for i in range(npages):
            p = pfn + i
            cur = st_map[p]
            if cur != 0:
                stats[W_MAPPING_SET] += 1
                stats[S_OWNER_OVERWRITTEN] += 1
                if cur == _FLAG:
                    stats[S_FLAG_CLEAR] += 1
            st_map[p] = m
            st_idx[p] = idx + i
    stats[S_PAGE_UPDATES] += npages
    return npages


@njit(cache=True, inline="always")
def cow_index_op(opcode, pfn, npages, m, idx, flag, st_map, st_idx, st_order, stats):
    if opcode == 0:
        return _flag_associate(pfn, npages, m, idx, flag, st_map, st_idx, stats)
    stats[S_DISASSOCIATE_CALLS] += 1
    for i in range(npages):
        p = pfn + i
        cur = st_map[p]
        if cur == _FLAG:
            old = st_idx[p]
            st_idx[p] = old - 1  # post-decrement: "if (page->index-- > 0) continue"
            stats[S_SHARE_DEC] += 1
            if old != 0:
                continue
            stats[S_FLAG_CLEAR] += 1
            stats[S_PAGES_RESET] += 1
        else:
            if cur != 0 and cur != m:
                stats[W_FOREIGN_MAPPING] += 1
            if cur != 0 or st_idx[p] != 0:
                stats[S_PAGES_RESET] += 1
        st_map[p] = 0
        st_idx[p] = 0
    stats[S_PAGE_UPDATES] += npages
    return npages


@njit(cache=True)
def cow_index_batch(op, pfn, npages, m, idx, flag, st_map, st_idx, st_order, stats):
    for k in range(op.shape[0]):
        cow_index_op(
            op[k], pfn[k], npages[k], m[k], idx[k], flag[k], st_map, st_idx, st_order, stats
        )


@njit(cache=True, inline="always")
def page_share_op(opcode, pfn, npages, m, idx, flag, st_map, st_idx, st_order, stats):
    if opcode == 0:
        return _flag_associate(pfn, npages, m, idx, flag, st_map, st_idx, stats)
    stats[S_DISASSOCIATE_CALLS] += 1
    for i in range(npages):
        p = pfn + i
        cur = st_map[p]
        if cur == _FLAG:
            share = st_idx[p] - 1  # pre-decrement: "if (--page->share > 0) continue"
            st_idx[p] = share
            stats[S_SHARE_DEC] += 1
            if share != 0:
                continue
            stats[S_FLAG_CLEAR] += 1
            stats[S_PAGES_RESET] += 1
        else:
            if cur != 0 and cur != m:
                stats[W_FOREIGN_MAPPING] += 1
            if cur != 0 or st_idx[p] != 0:
                stats[S_PAGES_RESET] += 1
        st_map[p] = 0
        st_idx[p] = 0
    stats[S_PAGE_UPDATES] += npages
    return npages


@njit(cache=True)
def page_share_batch(op, pfn, npages, m, idx, flag, st_map, st_idx, st_order, stats):
    for k in range(op.shape[0]):
        page_share_op(
            op[k], pfn[k], npages[k], m[k], idx[k], flag[k], st_map, st_idx, st_order, stats
        )


# ------------------------------------------------------------ folio-share (v6.15+) / reset
@njit(cache=True, inline="always")
def _folio_op(opcode, pfn, npages, m, idx, flag, st_map, st_idx, st_order, stats, reset):
    blk = pfn >> 9
    if st_order[blk] != 0:
        head = blk << 9
        forder = 9
    else:
        head = pfn
        forder = 0
    cur = st_map[head]
    owned = cur > 0
    shared = cur <= 0 and st_idx[head] != 0  # dax_folio_is_shared(); the tag reads as NULL
    if opcode == 0:
        stats[S_ASSOCIATE_CALLS] += 1
        eorder = 9 if npages == 512 else 0
        if flag != 0 and (owned or shared):
            if owned:  # dax_folio_make_shared()
                st_map[head] = 0
                st_idx[head] = 1
                stats[S_FLAG_SET] += 1
            if st_idx[head] == 0:
                stats[W_SHARE_ZERO] += 1
            if eorder != forder:
                stats[W_ORDER_MISMATCH] += 1
            st_idx[head] += 1
            stats[S_SHARE_INC] += 1
            stats[S_PAGE_UPDATES] += 1
            return 1
        if owned:
            stats[W_MAPPING_SET] += 1
            stats[S_OWNER_OVERWRITTEN] += 1
        elif shared:
            stats[S_OWNER_OVERWRITTEN] += 1
            stats[S_FLAG_CLEAR] += 1
        if forder != 0:  # dax_folio_init(): WARN_ON_ONCE(folio_order(folio))
            stats[W_FOLIO_INIT_ORDER] += 1
        written = 1
        if eorder != 0:  # prep_compound_page(): pfn is 512-aligned and becomes the head
            st_order[blk] = 9
            for p in range(pfn + 1, pfn + 512):
                st_map[p] = 0
                st_idx[p] = 0
            written = 512
            head = pfn
        st_map[head] = m
        st_idx[head] = idx
        stats[S_PAGE_UPDATES] += written
        return written
    # dax_disassociate_entry() -> dax_folio_put(); trunc is ignored
    stats[S_DISASSOCIATE_CALLS] += 1
    if shared:
        ref = st_idx[head] - 1
        st_idx[head] = ref
        stats[S_SHARE_DEC] += 1
        if ref != 0:
            stats[S_PAGE_UPDATES] += 1
            return 1
        stats[S_FLAG_CLEAR] += 1
    if forder == 0:
        if reset or st_idx[head] == 0:
            if cur != 0 or st_idx[head] != 0 or shared:
                stats[S_PAGES_RESET] += 1
            st_map[head] = 0
            st_idx[head] = 0
        else:  # order-0 owner put: mapping = NULL, index left stale -> phantom Shared(index)
            st_map[head] = _TAG
            stats[S_FLAG_SET] += 1
        stats[S_PAGE_UPDATES] += 1
        return 1
    st_order[blk] = 0  # split back into 512 order-0 folios
    for p in range(head, head + 512):
        st_map[p] = 0
        st_idx[p] = 0
    stats[S_PAGES_RESET] += 512
    stats[S_PAGE_UPDATES] += 512
    return 512


@njit(cache=True, inline="always")
def folio_share_op(opcode, pfn, npages, m, idx, flag, st_map, st_idx, st_order, stats):
    return _folio_op(opcode, pfn, npages, m, idx, flag, st_map, st_idx, st_order, stats, False)


@njit(cache=True)
def folio_share_batch(op, pfn, npages, m, idx, flag, st_map, st_idx, st_order, stats):
    for k in range(op.shape[0]):
        _folio_op(
            op[k], pfn[k], npages[k], m[k], idx[k], flag[k], st_map, st_idx, st_order, stats,
            False,
        )


@njit(cache=True, inline="always")
def folio_share_reset_op(opcode, pfn, npages, m, idx, flag, st_map, st_idx, st_order, stats):
    return _folio_op(opcode, pfn, npages, m, idx, flag, st_map, st_idx, st_order, stats, True)


@njit(cache=True)
def folio_share_reset_batch(op, pfn, npages, m, idx, flag, st_map, st_idx, st_order, stats):
    for k in range(op.shape[0]):
        _folio_op(
            op[k], pfn[k], npages[k], m[k], idx[k], flag[k], st_map, st_idx, st_order, stats,
            True,
        )
