"""Encodings shared by the page-metadata engine, its kernels and its reference.

Per 4 KiB page the memmap keeps two int64 words, as the kernel's ``struct page`` does:

``mapping``
    ``0`` is NULL, ``-1`` (:data:`FLAG_SENTINEL`) is the design's flag value
    (PAGE_MAPPING_DAX_COW in ``cow-index``, PAGE_MAPPING_DAX_SHARED in ``page-share``), and
    ``>= 1`` is an address_space id.  The compiled folio kernels also use an *internal tag*
    ``-2`` (:data:`PHANTOM_TAG`): "NULL, but the share word is stale from an order-0 owner
    put".  Every predicate treats it exactly as NULL, and every exported view (``page()``,
    ``state()``, ``--state-out``) shows it as ``0``; it only lets ``phantom_pages()`` count the
    stale words exactly without extra memory.
``index``
    The kernel's aliased ``index`` / ``share`` word (a file page offset, or a share count).

Folio designs add one int8 per 512-page PMD block: the order (0 or 9) of the folio that
starts there.  Order-9 folios only ever start at a 512-aligned pfn, and their state lives in
the head page.

Statistics of the compiled kernels live in one int64 array (``stats``) laid out as
:data:`COUNTERS`, then :data:`SITES` (raw warning counts), then the *gauges* (values at this
moment, kept up to date by the built-in kernels at every state transition, so that reading
them costs O(1) instead of a scan of the memmap):

``stats[G_PHANTOM]``
    folio designs: pages carrying the phantom tag (NULL with a stale share word).
``stats[H_BASE + d]`` for ``0 <= d < HIST_BINS``
    the share-degree histogram: pages whose share degree is ``d`` (flag designs: pages with
    the sentinel and count ``d``, so bin 0 is the residue ``(FLAG, 0)``; folio designs:
    Shared(d) folios weighted by their pages, 512 for order 9, phantoms excluded).
``stats[H_OVERFLOW]``
    pages whose degree is ``>= HIST_BINS`` (or negative); when it is non-zero the exact
    histogram and maximum are obtained by a scan (see :mod:`sim.memmap.scan`).
"""

from __future__ import annotations

from sim.constants import PMD_NR_PAGES, PMD_ORDER  # noqa: F401 - re-exported

__all__ = [
    "OP_ASSOCIATE",
    "OP_DISASSOCIATE",
    "PMD_NPAGES",
    "PMD_ORDER",
    "FLAG_SENTINEL",
    "PHANTOM_TAG",
    "COUNTERS",
    "SITES",
    "COMMON_SITES",
    "N_STATS",
    "GAUGES",
    "HIST_BINS",
]

#: Operation codes of a batch (``op`` array).
OP_ASSOCIATE = 0
OP_DISASSOCIATE = 1

#: Pages of a PMD entry (PG_PMD_NR on x86-64 with 4 KiB pages) and the folio order it maps to.
PMD_NPAGES = PMD_NR_PAGES

#: ``mapping`` value of the design's flag (PAGE_MAPPING_DAX_COW / PAGE_MAPPING_DAX_SHARED).
FLAG_SENTINEL = -1
#: Internal ``mapping`` tag of the folio kernels: NULL with a stale share word (see module doc).
PHANTOM_TAG = -2

#: Churn counters, in the order of the stats array.
COUNTERS = (
    "share_inc",
    "share_dec",
    "flag_set",
    "flag_clear",
    "owner_overwritten",
    "pages_reset",
    "associate_calls",
    "disassociate_calls",
    "page_updates",
)

#: Warning sites every variant reports (0 where the design has no such check).
COMMON_SITES = ("associate_mapping_set", "disassociate_foreign_mapping", "associate_share_zero")

#: Every warning site the built-in kernels know, in the order of the stats array. The design
#: kernels count the first five (``dax_associate_entry``, ``dax_disassociate_entry``,
#: ``dax_folio_init``); the fsdax layer counts the last three (:meth:`MemMap.count_warning`):
#: ``folio_put_refcount``, the refcount check of ``dax_folio_put`` (it needs the page tables;
#: see :attr:`sim.memmap.Variant.put_refcount_min_order`), ``pmd_folio_order``,
#: ``vmf_insert_folio_pmd()``'s refusal of a folio not of order 9 (v6.15+, mm/huge_memory.c),
#: and ``clear_inode_nrpages``, ``clear_inode()``'s ``BUG_ON(inode->i_data.nrpages)`` at an
#: eviction (fs/inode.c): an order-0 entry removed from a multi-index slot leaves 511 pages
#: counted (:meth:`sim.dax.xarray_dax.DaxXArray.store_in_slot`); no design's own site.
#: The BUG is a counted site like the WARNs, not an invariant of its own: the kernels'
#: ``kernel BUG at`` and ``WARNING: at`` splats map to these sites alike
#: (:func:`sim.kernel.splat.parse_splats`), so ``daxsim kernel compare`` and ``hunt
#: --confirm`` treat it as they treat a WARN, and the hunt's ``no_warnings`` reads it
#: (:meth:`MemMap.warning_total` sums every site here, whatever a design lists).
SITES = COMMON_SITES + (
    "associate_order_mismatch",
    "folio_init_order",
    "folio_put_refcount",
    "pmd_folio_order",
    "clear_inode_nrpages",
)

#: Sites that are a ``BUG_ON`` (the task dies, an unmount there never returns), not a WARN.
BUG_SITES = ("clear_inode_nrpages",)

#: Gauges kept by the built-in kernels (besides the histogram), in stats order.
GAUGES = ("phantom_pages",)

#: Exact share-degree bins of the incremental histogram (degrees 0 .. HIST_BINS - 1).
HIST_BINS = 4096

N_STATS = len(COUNTERS) + len(SITES) + len(GAUGES) + HIST_BINS + 1

# Slots in the stats array (used by the compiled kernels as compile-time constants).
S_SHARE_INC = 0
S_SHARE_DEC = 1
S_FLAG_SET = 2
S_FLAG_CLEAR = 3
S_OWNER_OVERWRITTEN = 4
S_PAGES_RESET = 5
S_ASSOCIATE_CALLS = 6
S_DISASSOCIATE_CALLS = 7
S_PAGE_UPDATES = 8
W_MAPPING_SET = 9
W_FOREIGN_MAPPING = 10
W_SHARE_ZERO = 11
W_ORDER_MISMATCH = 12
W_FOLIO_INIT_ORDER = 13
W_FOLIO_PUT_REFCOUNT = 14
W_PMD_FOLIO_ORDER = 15
W_CLEAR_INODE_NRPAGES = 16
G_PHANTOM = 17
H_BASE = 18
H_OVERFLOW = H_BASE + HIST_BINS
