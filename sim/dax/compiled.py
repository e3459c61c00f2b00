"""Compiled (numba) DAX layer of the hunt's episodes: :class:`sim.dax.DaxFS` without timing.

A transcription of the functional paths of :mod:`sim.dax.fsdax` (entries, faults at PMD and
PTE size under the design's fault rules, invalidation after remaps, write-back marks, eviction,
memory failure) and of :mod:`sim.dax.xarray_dax` (entries by canonical index, marks, order-0
entries per 512-index block), on the compiled filesystem :mod:`sim.fs.compiled`, calling the
built-in designs' single-operation kernels (:mod:`sim.memmap.kernels`) for every
``dax_associate_entry`` / ``dax_disassociate_entry``. Nothing of the timing model is kept:
the search prices nothing (as ``DaxFS(accounting=False)``).

State is one :class:`DaxState` of arrays, per file slot (slot ``k`` is the hunt's file
``f{k}``; its address_space id is its inode number). Besides what DaxFS holds it keeps, for
the incremental association check, the *coverage* of every page by live real entries (count,
sum of mapping ids, sum of file indices at which they map the page) and per 512-page block
(entries starting in it: count, mapping sum, index sum), and the pfn ranges whose struct pages
the last operation touched.

Capacities (entries per file below :data:`MAXPG` indices, mappings, touched ranges) set the
overflow flag ``scal[S_OVERFLOW]`` when exceeded: the episode is then run on the Python stack.
Return codes are errnos as in :mod:`sim.fs.compiled` (0 success, > 0 errno, -1 overflow).
"""

from __future__ import annotations

import numpy as np
from numba.experimental import structref

from sim.constants import (
    BUILTIN_DESIGNS,
    DAX_EMPTY,
    DAX_PMD,
    DAX_SHIFT,
    DAX_ZERO_PAGE,
    PAGE_SIZE,
    PMD_NR_PAGES,
    PMD_ORDER,
)
from sim.fs.compiled import (
    ERR_OVERFLOW,
    fs_alloc_blocks,
    fs_clone,
    fs_cow_blocks,
    fs_dedupe,
    fs_iomap,
    fs_punch,
    fs_pwrite,
    fs_rmap,
    fs_store,
    fs_truncate,
    fs_unlink,
    fs_unshare,
    fs_zero_range,
)
from sim.fs.compiled_state import StateType, state_class
from sim.jit import njit
from sim.memmap.fault_rules import (
    RULE_BREAK_LAYOUT,
    RULE_CLEAR_DIRTY_FIRST,
    RULE_DIRTY,
    RULE_FLAG,
    RULE_INVALIDATE_REMAPPED,
    RULE_PMD_FOLIO_ORDER,
    RULE_REPLACE,
    RULE_TOWRITE,
)
from sim.memmap.kernels import (
    cow_index_one,
    folio_share_one,
    folio_share_reset_one,
    page_share_one,
    single_owner_one,
)
from sim.memmap.layout import COUNTERS, N_STATS, SITES
from sim.memmap.variants import VARIANTS

__all__ = ["DaxState", "dax_new", "dax_reset", "DESIGNS", "RULES_OF_DESIGN", "MAXPG", "MAXV"]

PAGE = PAGE_SIZE
PMD_NR = PMD_NR_PAGES
COLOUR = PMD_NR_PAGES - 1
MARK_DIRTY = 1
MARK_TOWRITE = 2
ZERO_PFN = -1
HOLE, UNWRITTEN, WRITTEN = 0, 1, 2

#: Last page index of a whole-file range.
WHOLE_FILE = (1 << 63) // PAGE
#: Not an errno: a fault's bus error (``FsError("SIGBUS")``): beyond EOF, or a PMD whose folio
#: ``vmf_insert_folio_pmd`` refuses.
SIGBUS = 1000

#: Built-in designs with a compiled engine, by code.
DESIGNS = BUILTIN_DESIGNS
#: Fault rules per design code: the design's ``fault_rules`` packed
#: (:meth:`sim.memmap.fault_rules.FaultRules.pack`).
RULES_OF_DESIGN = tuple(VARIANTS[n].fault_rules.pack() for n in DESIGNS)
#: Association rule per design code: 0 single owner, 1 flag + count, 2 folio share.
RULE_OF_DESIGN = tuple(
    2 if VARIANTS[n].folio else 1 if VARIANTS[n].flag_sentinel else 0 for n in DESIGNS
)
#: ``Variant.put_refcount_min_order`` per design code (-1: no refcount check at the put).
PUT_REF_MIN_ORDER = np.array(
    [
        -1 if VARIANTS[n].put_refcount_min_order is None else VARIANTS[n].put_refcount_min_order
        for n in DESIGNS
    ],
    dtype=np.int64,
)
_W_PUT_REF = len(COUNTERS) + SITES.index("folio_put_refcount")
#: DaxFS's CLOBBERED_MAPPING (the second struct page's mapping word after the zap of a PMD
#: whose folio was reset under it).
CLOBBERED_MAPPING = 0xFFFFFFFF

#: File page indices an entry may have (per file slot) before the episode overflows.
MAXPG = 4096
#: Mappings per episode before it overflows.
MAXV = 64
#: Touched pfn ranges per operation before it overflows.
MAXT = 4096

_WARN0 = len(COUNTERS)
_NWARN = len(SITES)
_W_PMD_FOLIO_ORDER = _WARN0 + SITES.index("pmd_folio_order")
_W_CLEAR_INODE = _WARN0 + SITES.index("clear_inode_nrpages")
#: ``xm`` bits from this shift up: 1 + the file page of an order-0 entry stored in the slot of
#: a multi-index entry (DaxXArray.wide; the low bits stay the marks)
WIDE_SHIFT = 8
MARKS = MARK_DIRTY | MARK_TOWRITE

# scal slots
S_OVERFLOW = 0
S_NVMA = 1  # mappings created so far (vid = index + 1)
S_NTOUCH = 2
S_DESIGN = 3
S_RULES = 4  # the packed fault rules
S_MF_BAD = 5  # memory failure of the last op: rmap path missed an owner
S_MF_FB_BAD = 6  # ... the page->mapping fallback missed one
S_NPOISON = 7


#: Fields of :class:`DaxState`, in constructor order:
#: ``xv``: int64[S, MAXPG] entry value at a canonical index, -1 none
#: ``xm``: int64[S, MAXPG] marks; from bit WIDE_SHIFT up, 1 + the file page of an order-0
#:   entry in a multi-index slot (DaxXArray.wide)
#: ``ppp``: int64[S, MAXPG // 512] order-0 entries per 512-index block
#: ``xmax``: int64[S] bound above every entry's index (+1), for range walks
#: ``nent``: int64[S]
#: ``nrp``: int64[S] pages ``mapping->nrpages`` keeps counted with no entry (511 per order-0
#:   entry removed from a multi-index slot: DaxXArray.store_in_slot)
#: ``vm``: int64[MAXV, 9]: slot, pgoff, npages, live, pmd chunk (-1), pmd pfn, pmd w,
#:   PTE tables (bit k: region (pgoff >> 9) + k has one), the PMD's folio was reset under it
#:   (DaxFS._orphan_pmds)
#: ``vpte``: int64[MAXV, 512] pfn of the PTE at page pgoff + j
#: ``vptw``: int64[MAXV, 512] -1 none, 0 read-only, 1 writable
#: ``mapping``: int64[nblocks] page->mapping words
#: ``index``: int64[nblocks]
#: ``order``: int8[nblk] folio order per 512-page block
#: ``stats``: int64[N_STATS]
#: ``cov_k``: int64[nblocks] live real entries mapping the page
#: ``cov_m``: int64[nblocks] sum of their mapping ids
#: ``cov_i``: int64[nblocks] sum of the file index at which each maps the page
#: ``bk_k``, ``bk_m``, ``bk_i``: int64[nblk] real entries starting in the block: count, sums of
#: their mapping ids and file indices
#: ``touch``: int64[MAXT, 2] (pfn, npages) whose struct pages the op touched
#: ``order0``: int8[nblk] folio orders before the op
#: ``poison``: int64[512, 3] pfns poisoned by the last op, with the fallback's owner read when
#: poisoned: (pfn, mapping id or 0, file index)
#: ``rbuf``: int64[64, 2] rmap scratch
#: ``iom``: int64[4] iomap scratch
#: ``scal``: int64[16]
#: ``ibuf``: int64[MAXPG + 1] entry indices of a range
#: ``shared``: int64[4 * MAXPG] shared pages of a file (op generation)
#: ``maps``: int64[3, MAXV] live mappings: slot, offset, length (bytes)
#: ``res``: int64[4] fault resolution
#: ``rng``: int64[2] byte range of the data check
@structref.register
class DaxStateType(StateType):
    """numba type of :class:`DaxState`."""


DaxState = state_class(
    "DaxState",
    (
        "xv",
        "xm",
        "ppp",
        "xmax",
        "nent",
        "nrp",
        "vm",
        "vpte",
        "vptw",
        "mapping",
        "index",
        "order",
        "stats",
        "cov_k",
        "cov_m",
        "cov_i",
        "bk_k",
        "bk_m",
        "bk_i",
        "touch",
        "order0",
        "poison",
        "rbuf",
        "iom",
        "scal",
        "ibuf",
        "shared",
        "maps",
        "res",
        "rng",
    ),
    DaxStateType,
    __name__,
    """Arrays of one compiled DaxFS (see the module docstring).""",
)


def dax_new(nblocks: int, nslots: int, design: int, rules: int | None = None) -> DaxState:
    """A compiled DaxFS for a device of ``nblocks`` pages and ``nslots`` file slots.

    ``design`` is a code (index in :data:`DESIGNS`); ``rules`` overrides the design's packed
    fault rules (as ``DaxFS(generation=...)`` does).
    """
    nblk = max(1, -(-int(nblocks) // PMD_NR))
    i64 = np.int64
    st = DaxState(
        np.full((nslots, MAXPG), -1, i64),
        np.zeros((nslots, MAXPG), i64),
        np.zeros((nslots, MAXPG // PMD_NR), i64),
        np.zeros(nslots, i64),
        np.zeros(nslots, i64),
        np.zeros(nslots, i64),
        np.zeros((MAXV, 9), i64),
        np.zeros((MAXV, PMD_NR), i64),
        np.full((MAXV, PMD_NR), -1, i64),
        np.zeros(nblocks, i64),
        np.zeros(nblocks, i64),
        np.zeros(nblk, np.int8),
        np.zeros(N_STATS, i64),
        np.zeros(nblocks, i64),
        np.zeros(nblocks, i64),
        np.zeros(nblocks, i64),
        np.zeros(nblk, i64),
        np.zeros(nblk, i64),
        np.zeros(nblk, i64),
        np.zeros((MAXT, 2), i64),
        np.zeros(nblk, np.int8),
        np.zeros((PMD_NR, 3), i64),
        np.zeros((64, 2), i64),
        np.zeros(4, i64),
        np.zeros(16, i64),
        np.zeros(MAXPG + 1, i64),
        np.zeros(4 * MAXPG, i64),
        np.zeros((3, MAXV), i64),
        np.zeros(4, i64),
        np.zeros(2, i64),
    )
    st.scal[S_DESIGN] = design
    st.scal[S_RULES] = RULES_OF_DESIGN[design] if rules is None else int(rules)
    return st


@njit(cache=True)
def dax_reset(st):
    """Back to a fresh DaxFS (no entry, no mapping, every page (NULL, 0))."""
    ns = st.xv.shape[0]
    nv = st.scal[S_NVMA]
    for v in range(min(nv, MAXV)):
        for j in range(PMD_NR):
            st.vptw[v, j] = -1
        for c in range(9):
            st.vm[v, c] = 0
    live = False
    for s in range(ns):
        if st.nent[s]:
            live = True
    # the coverage follows the entries (zero once every entry is gone, as after a teardown);
    # the words are cleared where set
    if live or st.scal[S_OVERFLOW]:
        st.cov_k[:] = 0
        st.cov_m[:] = 0
        st.cov_i[:] = 0
        st.bk_k[:] = 0
        st.bk_m[:] = 0
        st.bk_i[:] = 0
    m = st.mapping
    x = st.index
    for p in range(m.shape[0]):
        if m[p] != 0 or x[p] != 0:
            m[p] = 0
            x[p] = 0
    st.order[:] = 0
    st.stats[:] = 0
    for s in range(ns):
        hi = st.xmax[s]
        if st.nent[s] > 0 or hi > 0:
            for i in range(min(hi, MAXPG)):
                st.xv[s, i] = -1
                st.xm[s, i] = 0
        st.xmax[s] = 0
        st.nent[s] = 0
        st.nrp[s] = 0
        for b in range(st.ppp.shape[1]):
            st.ppp[s, b] = 0
    d = st.scal[S_DESIGN]
    r = st.scal[S_RULES]
    st.scal[:] = 0
    st.scal[S_DESIGN] = d
    st.scal[S_RULES] = r


# ------------------------------------------------------------------------ page state
@njit(cache=True)
def _design_op(st, op, pfn, n, mid, index, flag):
    d = st.scal[S_DESIGN]
    if d == 0:
        return single_owner_one(
            op, pfn, n, mid, index, flag, st.mapping, st.index, st.order, st.stats
        )
    if d == 1:
        return cow_index_one(op, pfn, n, mid, index, flag, st.mapping, st.index, st.order, st.stats)
    if d == 2:
        return page_share_one(
            op, pfn, n, mid, index, flag, st.mapping, st.index, st.order, st.stats
        )
    if d == 3:
        return folio_share_one(
            op, pfn, n, mid, index, flag, st.mapping, st.index, st.order, st.stats
        )
    return folio_share_reset_one(
        op, pfn, n, mid, index, flag, st.mapping, st.index, st.order, st.stats
    )


@njit(cache=True)
def _touch(st, pfn, n):
    k = st.scal[S_NTOUCH]
    if k >= MAXT:
        st.scal[S_OVERFLOW] = 1
        return
    st.touch[k, 0] = pfn
    st.touch[k, 1] = n
    st.scal[S_NTOUCH] = k + 1


@njit(cache=True)
def _put_refcount_check(st, s, index, pfn):
    """DaxFS._put_refcount_check: ``dax_folio_put``'s WARN when the final put of the folio
    holding ``pfn`` (the entry at file page ``index`` of slot ``s``) leaves a PTE or PMD of
    the file's mappings on it at the folio's offsets (v6.15+; order-0 folios from v7.1)."""
    min_order = PUT_REF_MIN_ORDER[st.scal[S_DESIGN]]
    if min_order < 0:
        return
    head = pfn
    order = 0
    if st.order[pfn >> 9] == 9:
        head = pfn - (pfn & COLOUR)
        order = 9
    if order < min_order:
        return
    m = st.mapping[head]
    if m < 1 and st.index[head] > 1:
        return  # shared: the share count drops, not the final put
    hi = head + (1 << order)
    first = index - (pfn - head)
    last = first + (1 << order) - 1
    c0 = first & ~COLOUR
    c1 = last & ~COLOUR
    mapped = False
    for v in range(st.scal[S_NVMA]):
        if not st.vm[v, 3] or st.vm[v, 0] != s:
            continue
        c = st.vm[v, 4]
        p = st.vm[v, 5]
        if c >= 0 and (c == c0 or c == c1) and 0 <= p < hi and head < p + PMD_NR:
            mapped = True
            if order:
                st.vm[v, 8] = 1  # the PMD now maps order-0 pages (DaxFS._zap_pmd)
        if mapped:
            continue
        pg = st.vm[v, 1]
        lo = max(first, pg)
        up = min(last, pg + st.vm[v, 2] - 1)
        for i in range(lo, up + 1):
            j = i - pg
            if st.vptw[v, j] >= 0 and head <= st.vpte[v, j] < hi:
                mapped = True
                break
    if mapped:
        st.stats[_W_PUT_REF] += 1


@njit(cache=True)
def _entry_pages(st, s, mid, index, value, assoc, flag):
    """DaxFS._entry_pages: associate / disassociate a real entry with the memmap."""
    if value & (DAX_ZERO_PAGE | DAX_EMPTY):
        return
    pfn = value >> DAX_SHIFT
    n = PMD_NR if value & DAX_PMD else 1
    _touch(st, pfn, n)
    if assoc:
        w = _design_op(st, 0, pfn, n, mid, index, 1 if flag else 0)
    else:
        _put_refcount_check(st, s, index, pfn)
        w = _design_op(st, 1, pfn, n, mid, 0, 1 if flag else 0)
    if w < 0:
        st.scal[S_OVERFLOW] = 1  # an invalid entry: let the Python stack raise it


# ------------------------------------------------------------------------ xarray
@njit(cache=True)
def _cover(st, mid, index, value, sign):
    if value & (DAX_ZERO_PAGE | DAX_EMPTY):
        return
    pfn = value >> DAX_SHIFT
    n = PMD_NR if value & DAX_PMD else 1
    for j in range(n):
        p = pfn + j
        st.cov_k[p] += sign
        st.cov_m[p] += sign * mid
        st.cov_i[p] += sign * (index + j)
    b = pfn >> 9
    st.bk_k[b] += sign
    st.bk_m[b] += sign * mid
    st.bk_i[b] += sign * index
    _touch(st, pfn, n)


@njit(cache=True)
def xa_erase(st, s, mid, index):
    """Remove the entry at canonical ``index`` of slot ``s``; its value or -1."""
    if index < 0 or index >= MAXPG:
        return -1
    v = st.xv[s, index]
    if v < 0:
        return -1
    at = _entry_index(st, s, index)
    if at != index or st.xm[s, index] >> WIDE_SHIFT:
        st.nrp[s] += PMD_NR - 1  # removed from a multi-index slot: 1 of its 512 uncounted
    st.xv[s, index] = -1
    st.xm[s, index] = 0
    st.nent[s] -= 1
    if not v & DAX_PMD:
        st.ppp[s, index >> 9] -= 1
    _cover(st, mid, at, v, -1)
    return v


@njit(cache=True)
def _entry_index(st, s, index):
    """The file page the entry at canonical ``index`` was associated at (DaxXArray.wide)."""
    w = st.xm[s, index] >> WIDE_SHIFT
    return index + w - 1 if w else index


@njit(cache=True)
def xa_store_in_slot(st, s, mid, canonical, index, value):
    """DaxXArray.store_in_slot: the order-0 ``value`` of file page ``index`` stored in the
    slot of the multi-index entry at ``canonical``, covering its 512 indices."""
    c = canonical & ~COLOUR
    if c + PMD_NR > MAXPG:
        st.scal[S_OVERFLOW] = 1
        return
    if st.xv[s, c] >= 0:
        kept = st.nrp[s]
        xa_erase(st, s, mid, c)
        st.nrp[s] = kept  # replaced in the slot: nrpages untouched
    value &= ~DAX_PMD
    st.xv[s, c] = value
    st.xm[s, c] = (index - c + 1) << WIDE_SHIFT
    st.nent[s] += 1
    st.ppp[s, c >> 9] += 1
    if c + PMD_NR > st.xmax[s]:
        st.xmax[s] = c + PMD_NR
    _cover(st, mid, index, value, 1)


@njit(cache=True)
def xa_store(st, s, mid, index, value):
    """Install ``value`` at canonical ``index`` (replacing what is there)."""
    if value & DAX_PMD:
        index &= ~COLOUR
    n = PMD_NR if value & DAX_PMD else 1
    if index < 0 or index + n > MAXPG:
        st.scal[S_OVERFLOW] = 1
        return
    if st.xv[s, index] >= 0:
        xa_erase(st, s, mid, index)
    st.xv[s, index] = value
    st.nent[s] += 1
    if not value & DAX_PMD:
        st.ppp[s, index >> 9] += 1
    if index + n > st.xmax[s]:
        st.xmax[s] = index + n
    _cover(st, mid, index, value, 1)


@njit(cache=True)
def xa_lookup(st, s, index):
    """Canonical index of the entry covering ``index`` (-1 none)."""
    if index < 0 or index >= MAXPG:
        return -1
    if st.xv[s, index] >= 0:
        return index
    c = index & ~COLOUR
    v = st.xv[s, c]
    if v >= 0 and (v & DAX_PMD or st.xm[s, c] >> WIDE_SHIFT):
        return c
    return -1


@njit(cache=True)
def _range_indices(st, s, first, last, out):
    """Canonical indices of entries intersecting ``[first, last]`` (sorted) into ``out``."""
    k = 0
    if last < first or st.nent[s] == 0:
        return 0
    if first < 0:
        first = 0
    c = first & ~COLOUR
    if c < first and c < MAXPG:
        v = st.xv[s, c]
        if v >= 0 and (v & DAX_PMD or st.xm[s, c] >> WIDE_SHIFT):
            out[k] = c
            k += 1
    hi = min(last, st.xmax[s] - 1)
    for i in range(first, hi + 1):
        if st.xv[s, i] >= 0:
            out[k] = i
            k += 1
    return k


# ------------------------------------------------------------------------ mappings
@njit(cache=True)
def vma_lookup(st, v, index):
    """``(pfn, writable)`` of what mapping ``v`` (0-based) maps at file page ``index``;
    writable -1 when nothing is mapped."""
    j = index - st.vm[v, 1]
    if 0 <= j < PMD_NR and st.vptw[v, j] >= 0:
        return st.vpte[v, j], st.vptw[v, j]
    c = st.vm[v, 4]
    if c >= 0 and c == (index & ~COLOUR):
        p = st.vm[v, 5]
        return (p + (index & COLOUR) if p >= 0 else ZERO_PFN), st.vm[v, 6]
    return 0, -1


@njit(cache=True)
def _any_mapped(st, s):
    for v in range(st.scal[S_NVMA]):
        if st.vm[v, 3] and st.vm[v, 0] == s:
            if st.vm[v, 4] >= 0:
                return True
            for j in range(st.vm[v, 2]):
                if st.vptw[v, j] >= 0:
                    return True
    return False


@njit(cache=True)
def _unmap_index_range(st, s, first, last):
    """``unmap_mapping_pages`` over file pages ``[first, last]`` in every mapping of ``s``."""
    for v in range(st.scal[S_NVMA]):
        if not st.vm[v, 3] or st.vm[v, 0] != s:
            continue
        pg = st.vm[v, 1]
        lo = max(first, pg)
        hi = min(last, pg + st.vm[v, 2] - 1)
        if lo > hi:
            continue
        for i in range(lo, hi + 1):
            st.vptw[v, i - pg] = -1
        c = st.vm[v, 4]
        if c >= 0 and c <= hi and c + PMD_NR - 1 >= lo:
            _zap_pmd(st, v)
            st.vm[v, 4] = -1


@njit(cache=True)
def _zap_pmd(st, v):
    """DaxFS._zap_pmd: the zap of mapping ``v``'s PMD after its folio was reset under it
    writes the second struct page's mapping word (when it is at (NULL, 0))."""
    if st.vm[v, 8] == 0 or st.vm[v, 4] < 0:
        return
    st.vm[v, 8] = 0
    p = st.vm[v, 5] + 1
    if st.vm[v, 5] >= 0 and p < st.mapping.shape[0]:
        if st.mapping[p] == 0 and st.index[p] == 0:
            st.mapping[p] = CLOBBERED_MAPPING
        _touch(st, p, 1)


@njit(cache=True)
def dax_mmap(st, s, off, length):
    """A writable MAP_SHARED mapping of slot ``s`` (PMD colour-aligned); its 0-based id."""
    v = st.scal[S_NVMA]
    npg = -(-length // PAGE)
    if v >= MAXV or npg > PMD_NR:
        st.scal[S_OVERFLOW] = 1
        return -1
    st.scal[S_NVMA] = v + 1
    st.vm[v, 0] = s
    st.vm[v, 1] = off // PAGE
    st.vm[v, 2] = npg
    st.vm[v, 3] = 1
    st.vm[v, 4] = -1
    st.vm[v, 5] = 0
    st.vm[v, 6] = 0
    st.vm[v, 7] = 0
    st.vm[v, 8] = 0
    for j in range(PMD_NR):
        st.vptw[v, j] = -1
    return v


@njit(cache=True)
def dax_munmap(st, v):
    """Remove mapping ``v`` (its page-table entries; the DAX entries stay)."""
    if st.vm[v, 3]:
        _zap_pmd(st, v)
    st.vm[v, 3] = 0
    st.vm[v, 4] = -1
    st.vm[v, 7] = 0
    for j in range(PMD_NR):
        st.vptw[v, j] = -1


# ------------------------------------------------------------------------ entries
@njit(cache=True)
def _remove_entries(st, s, mid, first, last, trunc, clear_dirty, buf):
    """DaxFS._remove_entries: trunc unmaps first; an invalidation (not trunc) deletes the
    entries first and unmaps after (``invalidate_inode_pages2_range``)."""
    if last < first:
        return
    if trunc:
        _unmap_index_range(st, s, first, last)
    if st.nent[s] > 0:
        k = _range_indices(st, s, first, last, buf)
        for j in range(k):
            idx = buf[j]
            if not trunc and not clear_dirty and st.xm[s, idx] & (MARK_DIRTY | MARK_TOWRITE):
                continue
            at = _entry_index(st, s, idx)
            value = xa_erase(st, s, mid, idx)
            _entry_pages(st, s, mid, at, value, False, trunc)
    if not trunc:
        _unmap_index_range(st, s, first, last)


@njit(cache=True)
def _after_remap(st, fsst, clear_dirty, buf):
    """DaxFS._after_remap over the change rows of the last filesystem call: rows of kind 0
    (remapped) are invalidated under the rule ``invalidate_remapped`` (else left alone, the
    entries and page-table entries stale on the old pfn: 6.0-6.1's ``dax_iomap_iter``), rows
    of kind 1 (newly mapped) always; DIRTY is cleared first under ``clear_dirty_first``."""
    rules = st.scal[S_RULES]
    inval_remapped = (rules >> RULE_INVALIDATE_REMAPPED) & 1 != 0
    clear = clear_dirty and (rules >> RULE_CLEAR_DIRTY_FIRST) & 1 != 0
    nch = fsst.scal[3]
    for kind in range(2):
        if kind == 0 and not inval_remapped:
            continue  # 6.0-6.1: entries and PTEs/PMDs stay on the old pfn
        for r in range(nch):
            if fsst.chg[r, 0] != kind:
                continue
            s = fsst.chg[r, 1]
            if s < 0:
                continue
            if fsst.ino[s] < 0:
                continue
            if not (st.nent[s] > 0 or _any_mapped(st, s)):
                continue
            first = fsst.chg[r, 2]
            last = first + fsst.chg[r, 3] - 1
            _remove_entries(st, s, fsst.ino[s], first, last, False, clear, buf)


@njit(cache=True)
def _writeback(st, s, off, length):
    """dax_writeback_mapping_range over bytes ``[off, off + length)``: marks cleared,
    PTEs/PMDs write-protected."""
    if st.nent[s] == 0 or length <= 0:
        return
    first, last = off // PAGE, (off + length - 1) // PAGE
    if first < 0:
        first = 0
    c = first & ~COLOUR
    lo = c if c < first else first
    hi = min(last, st.xmax[s] - 1)
    for idx in range(lo, hi + 1):
        value = st.xv[s, idx]
        if value < 0:
            continue
        if idx < first and not (value & DAX_PMD or st.xm[s, idx] >> WIDE_SHIFT):
            continue
        if st.xm[s, idx] & MARKS == 0:
            continue
        st.xm[s, idx] &= ~MARKS
        for v in range(st.scal[S_NVMA]):
            if not st.vm[v, 3] or st.vm[v, 0] != s:
                continue
            if value & DAX_PMD:
                if st.vm[v, 4] == idx and st.vm[v, 6]:
                    st.vm[v, 6] = 0
            else:
                j = idx - st.vm[v, 1]
                if 0 <= j < PMD_NR and st.vptw[v, j] == 1:
                    st.vptw[v, j] = 0


@njit(cache=True)
def _evict(st, s, mid):
    """Inode eviction: mappings' tables cleared, every entry removed with trunc=true."""
    for v in range(st.scal[S_NVMA]):
        if st.vm[v, 3] and st.vm[v, 0] == s:
            _zap_pmd(st, v)
            st.vm[v, 4] = -1
            for j in range(PMD_NR):
                st.vptw[v, j] = -1
    if st.nent[s]:
        for idx in range(st.xmax[s]):
            if st.xv[s, idx] >= 0:
                at = _entry_index(st, s, idx)
                value = xa_erase(st, s, mid, idx)
                _entry_pages(st, s, mid, at, value, False, True)
    st.xmax[s] = 0
    if st.nrp[s]:  # DaxFS._evict: clear_inode's BUG_ON(inode->i_data.nrpages)
        st.stats[_W_CLEAR_INODE] += 1
        st.nrp[s] = 0


@njit(cache=True)
def _break_layout(st, s, mid, buf):
    """DaxFS._break_layout: xfs_break_dax_layouts on slot ``s`` under the rule
    ``break_layout`` (0 none, 1 unmap every mapping, 2 also delete the entries, trunc=true)."""
    how = (st.scal[S_RULES] >> RULE_BREAK_LAYOUT) & 3
    if how == 0:
        return
    if how == 2:
        _remove_entries(st, s, mid, 0, WHOLE_FILE, True, False, buf)
    else:
        _unmap_index_range(st, s, 0, WHOLE_FILE)


# ------------------------------------------------------------------------ file ops
@njit(cache=True)
def dax_truncate(st, fsst, s, size, buf):
    """ftruncate: entries past the new EOF removed (trunc=true), then the remap."""
    err = fs_truncate(fsst, s, size)
    if err:
        return err
    mid = fsst.ino[s]
    _break_layout(st, s, mid, buf)
    first = -(-size // PAGE)
    # DaxFS: from the new EOF to the larger of the last index an entry covers and the end
    # of the file's mappings
    mx = -1
    if st.nent[s]:
        for i in range(st.xmax[s]):
            v = st.xv[s, i]
            if v >= 0:
                e = i + (PMD_NR if v & DAX_PMD else 1) - 1
                if e > mx:
                    mx = e
    hi = mx
    vend = 0
    for v in range(st.scal[S_NVMA]):
        if st.vm[v, 3] and st.vm[v, 0] == s:
            e = st.vm[v, 1] + st.vm[v, 2]
            if e > vend:
                vend = e
    if vend > hi:
        hi = vend
    if first > hi:
        hi = first
    _remove_entries(st, s, mid, first, hi, True, False, buf)
    _after_remap(st, fsst, True, buf)
    return 0


@njit(cache=True)
def dax_pwrite(st, fsst, s, off, length, byte, buf):
    err = fs_pwrite(fsst, s, off, length, byte)
    if err:
        return err
    _after_remap(st, fsst, True, buf)
    return 0


@njit(cache=True)
def _range_op_tail(st, fsst, s, off, length, remove, clear_dirty, buf):
    _break_layout(st, s, fsst.ino[s], buf)  # xfs_file_fallocate, every mode
    if remove and length > 0:
        first, last = off // PAGE, (off + length - 1) // PAGE
        _remove_entries(st, s, fsst.ino[s], first, last, True, False, buf)
    _after_remap(st, fsst, clear_dirty, buf)


@njit(cache=True)
def dax_punch(st, fsst, s, off, length, buf):
    err = fs_punch(fsst, s, off, length)
    if err:
        return err
    _range_op_tail(st, fsst, s, off, length, True, True, buf)
    return 0


@njit(cache=True)
def dax_zero_range(st, fsst, s, off, length, keep_size, buf):
    err = fs_zero_range(fsst, s, off, length, keep_size)
    if err:
        return err
    _range_op_tail(st, fsst, s, off, length, True, True, buf)
    return 0


@njit(cache=True)
def dax_unshare(st, fsst, s, off, length, buf):
    err = fs_unshare(fsst, s, off, length)
    if err:
        return err
    _range_op_tail(st, fsst, s, off, length, False, False, buf)
    return 0


@njit(cache=True)
def dax_clone(st, fsst, d, src, soff, doff, length, buf):
    """FICLONE(RANGE): write-back of both ranges, destination entries removed, remap."""
    if length == 0:
        eff = max(0, fsst.size[src] - soff)
    else:
        eff = length
    err = fs_clone(fsst, d, src, soff, doff, length)
    if err:
        return err
    _break_layout(st, src, fsst.ino[src], buf)
    _break_layout(st, d, fsst.ino[d], buf)
    if eff > 0:
        _writeback(st, src, soff, eff)
        _writeback(st, d, doff, eff)
        first, last = doff // PAGE, (doff + eff - 1) // PAGE
        _remove_entries(st, d, fsst.ino[d], first, last, True, False, buf)
    _after_remap(st, fsst, True, buf)
    return 0


@njit(cache=True)
def dax_dedupe(st, fsst, d, src, soff, doff, length, buf):
    err = fs_dedupe(fsst, d, src, soff, doff, length)
    if err == 52 or err == 0:  # EBADE: the compare ran after the layouts and the write-back
        _break_layout(st, src, fsst.ino[src], buf)
        _break_layout(st, d, fsst.ino[d], buf)
    if err == 52:
        _writeback(st, src, soff, length)
        _writeback(st, d, doff, length)
        return err
    if err:
        return err
    if length > 0:
        _writeback(st, src, soff, length)
        _writeback(st, d, doff, length)
        first, last = doff // PAGE, (doff + length - 1) // PAGE
        _remove_entries(st, d, fsst.ino[d], first, last, True, False, buf)
    _after_remap(st, fsst, True, buf)
    return 0


@njit(cache=True)
def dax_unlink(st, fsst, s):
    """unlink of a closed, unmapped file (as the hunt unlinks: no orphan arises, see
    ``DaxFS.unlink``): the filesystem frees its blocks, then eviction."""
    mid = fsst.ino[s]
    err = fs_unlink(fsst, s)
    if err:
        return err
    _evict(st, s, mid)
    return 0


# ------------------------------------------------------------------------ faults
@njit(cache=True)
def _holds(rules, at, write, shared):
    """Whether the condition packed at bit ``at`` of ``rules`` holds for the fault
    (:func:`sim.memmap.fault_rules.packed_holds`: never, cow, shared, write, always)."""
    code = (rules >> at) & 7
    if code == 0:
        return False
    if code == 1:
        return write and shared
    if code == 2:
        return shared
    if code == 3:
        return write
    return True


@njit(cache=True)
def _insert_entry(st, s, mid, index, old_idx, old_value, has_old, new_value, write, shared):
    """dax_insert_entry under the fault rules; the entry value in place."""
    rules = st.scal[S_RULES]
    in_slot = False
    if not has_old:
        old_idx = index
        old_value = DAX_EMPTY | (new_value & DAX_PMD)
    elif not new_value & DAX_PMD:
        in_slot = old_value & DAX_PMD != 0 or st.xm[s, old_idx] >> WIDE_SHIFT != 0
    old_zero = old_value & DAX_ZERO_PAGE
    flag = _holds(rules, RULE_FLAG, write, shared)
    dirty = _holds(rules, RULE_DIRTY, write, shared)
    towrite = _holds(rules, RULE_TOWRITE, write, shared)
    replace_cond = _holds(rules, RULE_REPLACE, write, shared)
    if replace_cond or (old_zero and not new_value & DAX_ZERO_PAGE):
        if old_value & DAX_PMD:
            _unmap_index_range(st, s, old_idx, old_idx + PMD_NR - 1)
        else:
            _unmap_index_range(st, s, index, index)
    if replace_cond or old_zero or old_value & DAX_EMPTY:
        if has_old:
            at = _entry_index(st, s, old_idx)
            if not in_slot:
                xa_erase(st, s, mid, old_idx)
            _entry_pages(st, s, mid, at, old_value, False, False)
        _entry_pages(st, s, mid, index, new_value, True, flag)
        if in_slot:
            xa_store_in_slot(st, s, mid, old_idx, index, new_value)
            idx = old_idx
        else:
            xa_store(st, s, mid, index, new_value)
            idx = index & ~COLOUR if new_value & DAX_PMD else index
    else:
        idx = old_idx
    if idx >= MAXPG:
        st.scal[S_OVERFLOW] = 1
        return
    if dirty:
        st.xm[s, idx] |= MARK_DIRTY
    if towrite:
        st.xm[s, idx] |= MARK_TOWRITE


@njit(cache=True)
def _cow_or_alloc(st, fsst, s, first, n, write, res):
    """DaxFS._cow_or_alloc into ``res`` = (kind, pfn, shared): kind 0 none (fallback),
    1 zero, 2 mapped. Returns an errno (the filesystem's allocation can fail)."""
    iom = st.iom
    err = fs_iomap(fsst, s, first, n, iom)
    if err:
        return err
    res[0] = 0
    res[1] = 0
    res[2] = 0
    state, pb, length, shared = iom[0], iom[1], iom[2], iom[3]
    if length < n:
        return 0
    if state != WRITTEN:
        if not write:
            res[0] = 1
            res[1] = ZERO_PFN
            return 0
        err = fs_alloc_blocks(fsst, s, first, n)
        if err:
            return err
        err = fs_iomap(fsst, s, first, n, iom)
        if err:
            return err
        if iom[0] != WRITTEN or iom[2] < n:
            return 0
        res[0] = 2
        res[1] = iom[1]
        return 0
    if write and shared:
        err = fs_cow_blocks(fsst, s, first, n)
        if err:
            return err
        err = fs_iomap(fsst, s, first, n, iom)
        if err:
            return err
        if iom[2] < n:
            return 0
        res[0] = 2
        res[1] = iom[1]
        res[2] = 1
        return 0
    res[0] = 2
    res[1] = pb
    res[2] = 1 if shared else 0
    return 0


@njit(cache=True)
def _install(st, v, index, pfn, writable, pmd):
    if pmd:
        st.vm[v, 4] = index
        st.vm[v, 5] = pfn
        st.vm[v, 6] = 1 if writable else 0
    else:
        j = index - st.vm[v, 1]
        st.vpte[v, j] = pfn
        st.vptw[v, j] = 1 if writable else 0
        # the 2 MiB region now has a PTE table (DaxFS Vma.pte_tables): bit k = region
        # (pgoff >> 9) + k; zapping keeps it, munmap frees it
        st.vm[v, 7] |= 1 << ((index >> 9) - (st.vm[v, 1] >> 9))


@njit(cache=True)
def _fault_pmd(st, fsst, v, index, write, res):
    """dax_iomap_pmd_fault: (handled, errno)."""
    s = st.vm[v, 0]
    pg, npg = st.vm[v, 1], st.vm[v, 2]
    if st.vm[v, 7] & (1 << ((index >> 9) - (pg >> 9))):
        return False, 0  # pmd not none (a PTE table): __handle_mm_fault tries no huge fault
    c = index & ~COLOUR
    if c < pg or c + PMD_NR > pg + npg:
        return False, 0
    size = fsst.size[s]
    max_pgoff = -(-size // PAGE)
    if c >= max_pgoff or (c | COLOUR) >= max_pgoff:
        return False, 0
    if c + PMD_NR > MAXPG:
        st.scal[S_OVERFLOW] = 1
        return True, ERR_OVERFLOW
    if st.ppp[s, c >> 9]:
        return False, 0
    mid = fsst.ino[s]
    oi = xa_lookup(st, s, c)
    has_old = oi >= 0
    ov = st.xv[s, oi] if has_old else 0
    err = _cow_or_alloc(st, fsst, s, c, PMD_NR, write, res)
    if err:
        return True, err
    kind, pfn, shared = res[0], res[1], res[2]
    if kind == 0 or (kind == 2 and pfn & COLOUR):
        return False, 0
    if kind == 1:
        if not has_old or ov & DAX_EMPTY:
            _insert_entry(st, s, mid, c, oi, ov, has_old, DAX_ZERO_PAGE | DAX_PMD, False, False)
        _install(st, v, c, ZERO_PFN, False, True)
    else:
        _insert_entry(
            st, s, mid, c, oi, ov, has_old, (pfn << DAX_SHIFT) | DAX_PMD, write, shared != 0
        )
        if (
            (st.scal[S_RULES] >> RULE_PMD_FOLIO_ORDER) & 1
            and RULE_OF_DESIGN_ARR[st.scal[S_DESIGN]] == 2
            and st.order[pfn >> 9] != PMD_ORDER
        ):
            # DaxFS._pmd_folio_refused: vmf_insert_folio_pmd's WARN and VM_FAULT_SIGBUS
            st.stats[_W_PMD_FOLIO_ORDER] += 1
            return True, SIGBUS
        _install(st, v, c, pfn, write, True)
    return True, 0


@njit(cache=True)
def _fault_pte(st, fsst, v, index, write, res):
    s = st.vm[v, 0]
    mid = fsst.ino[s]
    if index >= MAXPG:
        st.scal[S_OVERFLOW] = 1
        return ERR_OVERFLOW
    oi = xa_lookup(st, s, index)
    has_old = oi >= 0
    ov = st.xv[s, oi] if has_old else 0
    if has_old and ov & DAX_PMD and ov & (DAX_ZERO_PAGE | DAX_EMPTY):
        _unmap_index_range(st, s, oi, oi + PMD_NR - 1)
        xa_erase(st, s, mid, oi)
        has_old = False
        oi = -1
        ov = 0
    err = _cow_or_alloc(st, fsst, s, index, 1, write, res)
    if err:
        return err
    kind, pfn, shared = res[0], res[1], res[2] != 0
    if kind == 1:
        if not has_old:
            _insert_entry(st, s, mid, index, -1, 0, False, DAX_ZERO_PAGE, False, False)
        _install(st, v, index, ZERO_PFN, False, False)
        return 0
    if has_old and (ov & DAX_PMD or st.xm[s, oi] >> WIDE_SHIFT):
        # a replacing fault puts its PTE entry in the multi-index slot (_insert_entry)
        if _holds(st.scal[S_RULES], RULE_REPLACE, write, shared):
            _insert_entry(st, s, mid, index, oi, ov, True, pfn << DAX_SHIFT, write, shared)
        else:
            _insert_entry(st, s, mid, oi, oi, ov, True, ov, write, shared)
        _install(st, v, index, pfn, write, False)
        return 0
    _insert_entry(st, s, mid, index, oi, ov, has_old, pfn << DAX_SHIFT, write, shared)
    _install(st, v, index, pfn, write, False)
    return 0


@njit(cache=True)
def dax_fault(st, fsst, v, index, write, res):
    """One fault on file page ``index`` through mapping ``v``: PMD first, PTE on fallback."""
    s = st.vm[v, 0]
    if index * PAGE >= fsst.size[s]:
        return SIGBUS
    handled, err = _fault_pmd(st, fsst, v, index, write, res)
    if handled:
        return err
    return _fault_pte(st, fsst, v, index, write, res)


@njit(cache=True)
def dax_mread(st, fsst, v, off, length, res):
    """Loads through mapping ``v``: fault every unmapped page."""
    if length <= 0:
        return 0
    for i in range(off // PAGE, (off + length - 1) // PAGE + 1):
        _p, w = vma_lookup(st, v, i)
        if w < 0:
            err = dax_fault(st, fsst, v, i, False, res)
            if err:
                return err
    return 0


@njit(cache=True)
def dax_mwrite(st, fsst, v, off, length, byte, res):
    """Stores through mapping ``v``: write-fault every page not mapped writable, then store."""
    if length > 0:
        for i in range(off // PAGE, (off + length - 1) // PAGE + 1):
            _p, w = vma_lookup(st, v, i)
            if w != 1:
                err = dax_fault(st, fsst, v, i, True, res)
                if err:
                    return err
    if length > 0:
        return fs_store(fsst, st.vm[v, 0], off, length, byte)
    return 0


# ------------------------------------------------------------------------ memory failure
@njit(cache=True)
def _page_owner(st, pfn):
    """(mapping word >= 1 or 0, head pfn) as MemMap.page_owner / folio read them."""
    head = pfn
    if RULE_OF_DESIGN_ARR[st.scal[S_DESIGN]] == 2 and st.order[pfn >> 9] == 9:
        head = pfn - (pfn & COLOUR)
    m = st.mapping[head]
    return (m if m >= 1 else 0), head


RULE_OF_DESIGN_ARR = np.array(RULE_OF_DESIGN, dtype=np.int64)


@njit(cache=True)
def _mf_check(st, fsst, j):
    """Whether the rmap path and the page->mapping fallback find every owner of poisoned
    page ``j``: live real entries mapping it whose file's block map still points at it (the
    rmap path reads the filesystem now, which a poison does not change; the fallback's owner
    is the one read when the page was poisoned)."""
    p = st.poison[j, 0]
    mo = st.poison[j, 1]
    mfi = st.poison[j, 2]
    iom = st.iom
    rb = st.rbuf
    nr = fs_rmap(fsst, p, rb)
    if nr < 0:
        st.scal[S_OVERFLOW] = 1
        return
    for s in range(st.xv.shape[0]):
        if fsst.ino[s] < 0 or st.nent[s] == 0:
            continue
        for idx in range(st.xmax[s]):
            value = st.xv[s, idx]
            if value < 0 or value & (DAX_ZERO_PAGE | DAX_EMPTY):
                continue
            pfn = value >> DAX_SHIFT
            n = PMD_NR if value & DAX_PMD else 1
            if not (pfn <= p < pfn + n):
                continue
            fi = idx + (p - pfn)
            fs_iomap(fsst, s, fi, 1, iom)
            if iom[1] != p:
                continue  # stale: the file no longer maps the block there
            found = False
            for r in range(nr):
                if rb[r, 0] == s and rb[r, 1] == fi:
                    found = True
                    break
            if not found:
                st.scal[S_MF_BAD] = 1
            if not (mo >= 1 and mo == fsst.ino[s] and mfi == fi):
                st.scal[S_MF_FB_BAD] = 1


@njit(cache=True)
def dax_memory_failure(st, fsst, v, off, length, res):
    """MADV_HWPOISON over ``[off, off + length)`` of mapping ``v``: per page fault it in,
    act through the rmap path (owners' PTEs unmapped); then check both owner lookups
    (``scal[S_MF_BAD]``, ``scal[S_MF_FB_BAD]``)."""
    st.scal[S_MF_BAD] = 0
    st.scal[S_MF_FB_BAD] = 0
    st.scal[S_NPOISON] = 0
    if length <= 0:
        return 0
    rb = st.rbuf
    for i in range(off // PAGE, (off + length - 1) // PAGE + 1):
        pfn, w = vma_lookup(st, v, i)
        if w < 0:
            err = dax_fault(st, fsst, v, i, False, res)
            if err:
                return err
            pfn, w = vma_lookup(st, v, i)
        if pfn < 0:
            continue
        k = st.scal[S_NPOISON]
        for q in range(st.scal[S_NPOISON]):
            if st.poison[q, 0] == pfn:  # a repeat: the last reading counts (a dict)
                k = q
                break
        if k >= st.poison.shape[0]:
            st.scal[S_OVERFLOW] = 1
            return ERR_OVERFLOW
        mo, head = _page_owner(st, pfn)
        st.poison[k, 0] = pfn
        st.poison[k, 1] = mo
        st.poison[k, 2] = st.index[head] + (pfn - head)
        if k == st.scal[S_NPOISON]:
            st.scal[S_NPOISON] = k + 1
        nr = fs_rmap(fsst, pfn, rb)
        if nr < 0:
            st.scal[S_OVERFLOW] = 1
            return ERR_OVERFLOW
        for r in range(nr):
            s = rb[r, 0]
            idx = rb[r, 1]
            if s < 0 or fsst.ino[s] < 0:
                continue
            ci = xa_lookup(st, s, idx)
            if ci < 0:
                continue
            value = st.xv[s, ci]
            if value & (DAX_ZERO_PAGE | DAX_EMPTY):
                continue
            lo = ci if value & DAX_PMD else idx
            n = PMD_NR if value & DAX_PMD else 1
            _unmap_index_range(st, s, lo, lo + n - 1)
    for j in range(st.scal[S_NPOISON]):
        _mf_check(st, fsst, j)
    return 0
