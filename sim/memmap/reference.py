"""Plain per-page Python transcriptions of each design: the oracle, not the engine.

Each function here is written to be read beside the kernel's ``fs/dax.c`` of its generation
(see ``shared/docs/kernel-semantics.md`` §1): one loop iteration per ``struct page`` for the
designs up to v6.14 (``for_each_mapped_pfn``), one folio for v6.15+.  Nothing here is shared
with the compiled kernels in :mod:`sim.memmap.kernels`; the tests check that both agree.

The state is a :class:`PageState`: ``mapping`` and ``index`` per page (any mutable sequence:
Python lists here, numpy arrays when :class:`~sim.memmap.MemMap` runs a user design without a
compiled kernel), ``order`` per 512-page block, raw warning counts per site and the churn
counters.  ``mapping`` holds 0 (NULL), -1 (the flag sentinel) or an address_space id >= 1.
The folio reference tracks stale share words in the set ``phantoms`` instead of a tag.

The at-any-moment statistics are kept too, independently of how the kernels keep them: each
built-in transcription is wrapped (:func:`_tallied`) so that the share degrees of the pages
it can touch are taken out of ``PageState.share_pages`` before the call and put back after
it (flag designs: the entry's pages with the sentinel, degree = count; folio designs: the
Shared(k) folio heads, weighted by their pages, phantoms excluded; plus the block's pages
when a PMD entry turns an order-0 block into a folio).  ``residue_pages()`` is its degree 0
and ``len(phantoms)`` the phantom count.  A user design that writes the words itself does
not go through these wrappers: :class:`~sim.memmap.MemMap` scans for it.

Page refcounts and pins are not modelled, so ``WARN_ON_ONCE(trunc && page_ref_count(page) >
1)`` (and the v6.15 ``folio_ref_count`` checks) can never fire and are not transcribed.
"""

from __future__ import annotations

import functools

from sim.memmap.layout import COUNTERS, FLAG_SENTINEL, PMD_NPAGES, PMD_ORDER

__all__ = [
    "PageState",
    "single_owner_associate",
    "single_owner_disassociate",
    "cow_index_associate",
    "cow_index_disassociate",
    "page_share_associate",
    "page_share_disassociate",
    "folio_share_associate",
    "folio_share_disassociate",
]

NULL = 0
FLAG = FLAG_SENTINEL  # PAGE_MAPPING_DAX_COW (v6.0) or PAGE_MAPPING_DAX_SHARED (v6.2)


class PageState:
    """Per-page state for the reference transcriptions.

    Parameters
    ----------
    npages : int
        Pages of the device.
    mapping, index : mutable sequence of int, optional
        Existing storage to work on (default: new lists of zeros).
    order : mutable sequence of int, optional
        Folio order per 512-page block (default: new list of zeros).
    """

    def __init__(self, npages: int, *, mapping=None, index=None, order=None):
        nblocks = max(1, -(-npages // PMD_NPAGES))
        self.npages = npages
        self.mapping = [0] * npages if mapping is None else mapping
        self.index = [0] * npages if index is None else index
        self.order = [0] * nblocks if order is None else order
        self.warnings: dict[str, int] = {}
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.phantoms: set[int] = set()
        #: share degree -> pages at that degree (kept by the built-in transcriptions)
        self.share_pages: dict[int, int] = {}

    def residue_pages(self) -> int:
        """Pages with the flag sentinel and a zero count (degree 0 of ``share_pages``)."""
        return self.share_pages.get(0, 0)

    def share_histogram(self) -> list[int]:
        """``h[d]`` pages at share degree ``d``, up to the largest degree present."""
        degrees = [d for d, n in self.share_pages.items() if n]
        h = [0] * (max(degrees) + 1 if degrees else 0)
        for d in degrees:
            h[d] = self.share_pages[d]
        return h

    def _tally(self, degree: int | None, pages: int, sign: int) -> None:
        if degree is None:
            return
        n = self.share_pages.get(degree, 0) + sign * pages
        if n:
            self.share_pages[degree] = n
        else:
            self.share_pages.pop(degree, None)

    def warn_on(self, site: str, condition: bool) -> bool:
        """``WARN_ON_ONCE(condition)``: count every time it holds (the latch is derived)."""
        if condition:
            self.warnings[site] = self.warnings.get(site, 0) + 1
        return condition

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name``."""
        self.counters[name] += n


def _reset_page(st: PageState, page: int) -> None:
    """``page->mapping = NULL; page->index = 0;`` and count a page returned to (NULL, 0)."""
    if st.mapping[page] != NULL or st.index[page] != 0:
        st.count("pages_reset")
    st.mapping[page] = NULL
    st.index[page] = 0


def _flag_degree(st, page):
    """Share degree of a page in a flag design (its count), or None without the sentinel."""
    return st.index[page] if st.mapping[page] == FLAG else None


def _folio_degree(st, page):
    """(degree, pages) of a Shared(k) folio head, else (None, 0); phantoms are excluded."""
    if st.mapping[page] != NULL or st.index[page] == 0 or page in st.phantoms:
        return None, 0
    big = page % PMD_NPAGES == 0 and st.order[page // PMD_NPAGES] == PMD_ORDER
    return st.index[page], (PMD_NPAGES if big else 1)


def _touched(st, pfn, npages, folio):
    """Pages whose share degree a call on this entry can change."""
    if not folio:
        return range(pfn, pfn + npages)
    block = pfn // PMD_NPAGES
    if npages == PMD_NPAGES and st.order[block] != PMD_ORDER:
        return range(pfn, pfn + PMD_NPAGES)  # prep_compound_page() clears the tails
    return (block * PMD_NPAGES,) if st.order[block] == PMD_ORDER else (pfn,)


def _tallied(folio):
    """Keep ``st.share_pages`` across a transcription: untally its pages, call, tally them."""

    def wrap(fn):
        @functools.wraps(fn)
        def call(st, pfn, npages, *args, **kwargs):
            pages = _touched(st, pfn, npages, folio)
            for page in pages:
                if folio:
                    st._tally(*_folio_degree(st, page), -1)
                else:
                    st._tally(_flag_degree(st, page), 1, -1)
            written = fn(st, pfn, npages, *args, **kwargs)
            for page in pages:
                if folio:
                    st._tally(*_folio_degree(st, page), +1)
                else:
                    st._tally(_flag_degree(st, page), 1, +1)
            return written

        return call

    return wrap


# --------------------------------------------------------------------------------------------
# (a) v4.17 .. v5.19: one owner per page, no counting.


def single_owner_associate(st, pfn, npages, mapping, index, flag):
    """dax_associate_entry(entry, mapping, vma, address) of v5.19; ``flag`` does not exist."""
    i = 0
    for page in range(pfn, pfn + npages):  # for_each_mapped_pfn(entry, pfn)
        if st.warn_on("associate_mapping_set", st.mapping[page] != NULL):
            st.count("owner_overwritten")
        st.mapping[page] = mapping
        st.index[page] = index + i
        i += 1
        st.count("page_updates")
    st.count("associate_calls")
    return npages


def single_owner_disassociate(st, pfn, npages, mapping, trunc):
    """dax_disassociate_entry(entry, mapping, trunc) of v5.19."""
    for page in range(pfn, pfn + npages):
        # WARN_ON_ONCE(trunc && page_ref_count(page) > 1): refcounts are not modelled.
        st.warn_on(
            "disassociate_foreign_mapping",
            st.mapping[page] != NULL and st.mapping[page] != mapping,
        )
        _reset_page(st, page)
        st.count("page_updates")
    st.count("disassociate_calls")
    return npages


# --------------------------------------------------------------------------------------------
# (b) v6.0, v6.1 (the seed, 6061b69b9a55): PAGE_MAPPING_DAX_COW, refcount in page->index.


def _dax_mapping_set_cow(st, page):
    if st.mapping[page] != FLAG:
        # Reset the index if the page was already mapped regularly before.
        if st.mapping[page] != NULL:
            st.index[page] = 1
        st.mapping[page] = FLAG
        st.count("flag_set")
    st.index[page] = st.index[page] + 1
    st.count("share_inc")


@_tallied(folio=False)
def cow_index_associate(st, pfn, npages, mapping, index, cow):
    """dax_associate_entry(..., bool cow) of v6.0."""
    i = 0
    for page in range(pfn, pfn + npages):
        if cow:
            _dax_mapping_set_cow(st, page)
        else:
            if st.warn_on("associate_mapping_set", st.mapping[page] != NULL):
                st.count("owner_overwritten")
                if st.mapping[page] == FLAG:
                    st.count("flag_clear")
            st.mapping[page] = mapping
            st.index[page] = index + i
            i += 1
        st.count("page_updates")
    st.count("associate_calls")
    return npages


@_tallied(folio=False)
def cow_index_disassociate(st, pfn, npages, mapping, trunc):
    """dax_disassociate_entry(..., bool trunc) of v6.0, post-decrement included."""
    for page in range(pfn, pfn + npages):
        st.count("page_updates")
        if st.mapping[page] == FLAG:  # dax_mapping_is_cow(page->mapping)
            # keep the CoW flag if this page is still shared:  if (page->index-- > 0)
            old = st.index[page]
            st.index[page] = old - 1  # unsigned in the kernel: 0 wraps to ULONG_MAX
            st.count("share_dec")
            if old != 0:  # unsigned "old > 0"
                continue
            st.count("flag_clear")
        else:
            st.warn_on(
                "disassociate_foreign_mapping",
                st.mapping[page] != NULL and st.mapping[page] != mapping,
            )
        if st.mapping[page] == FLAG:
            # (COW, 0) fell through after the wrap: the page was not at (NULL, 0) before.
            st.count("pages_reset")
            st.mapping[page] = NULL
            st.index[page] = 0
        else:
            _reset_page(st, page)
    st.count("disassociate_calls")
    return npages


# --------------------------------------------------------------------------------------------
# (c) v6.2 .. v6.14 (16900426586032): page->share, PAGE_MAPPING_DAX_SHARED, pre-decrement.


def _dax_page_share_get(st, page):
    if st.mapping[page] != FLAG:
        # Reset the index if the page was already mapped regularly before.
        if st.mapping[page] != NULL:
            st.index[page] = 1  # page->share = 1
        st.mapping[page] = FLAG
        st.count("flag_set")
    st.index[page] = st.index[page] + 1  # page->share++
    st.count("share_inc")


@_tallied(folio=False)
def page_share_associate(st, pfn, npages, mapping, index, shared):
    """dax_associate_entry(..., bool shared) of v6.2."""
    i = 0
    for page in range(pfn, pfn + npages):
        if shared:
            _dax_page_share_get(st, page)
        else:
            if st.warn_on("associate_mapping_set", st.mapping[page] != NULL):
                st.count("owner_overwritten")
                if st.mapping[page] == FLAG:
                    st.count("flag_clear")
            st.mapping[page] = mapping
            st.index[page] = index + i
            i += 1
        st.count("page_updates")
    st.count("associate_calls")
    return npages


@_tallied(folio=False)
def page_share_disassociate(st, pfn, npages, mapping, trunc):
    """dax_disassociate_entry(..., bool trunc) of v6.2."""
    for page in range(pfn, pfn + npages):
        st.count("page_updates")
        if st.mapping[page] == FLAG:  # dax_page_is_shared(page)
            # keep the shared flag if this page is still shared:  if (--page->share > 0)
            st.index[page] = st.index[page] - 1
            st.count("share_dec")
            if st.index[page] != 0:
                continue
            st.count("flag_clear")
            st.count("pages_reset")  # (SHARED, 1) -> (NULL, 0)
            st.mapping[page] = NULL
            st.index[page] = 0
            continue
        st.warn_on(
            "disassociate_foreign_mapping",
            st.mapping[page] != NULL and st.mapping[page] != mapping,
        )
        _reset_page(st, page)
    st.count("disassociate_calls")
    return npages


# --------------------------------------------------------------------------------------------
# (d) v6.15+ (38607c62b34b): folio->share, no flag; PMD entries are order-9 compound folios.
# ``reset`` selects v7.1+ (dax_folio_reset_order(), fs/dax.c: share = 0 on every final put,
# order 0 included); without it, v6.15-v7.0.


def _page_folio(st, pfn):
    """page_folio(pfn_to_page(pfn)): (head pfn, order) of the folio containing ``pfn``."""
    block = pfn // PMD_NPAGES
    if st.order[block] == PMD_ORDER:
        return block * PMD_NPAGES, PMD_ORDER
    return pfn, 0


def _dax_folio_is_shared(st, head):
    return st.mapping[head] == NULL and st.index[head] != 0


def _set_folio_words(st, head, mapping, index):
    st.mapping[head] = mapping
    st.index[head] = index
    if mapping != NULL or index == 0:
        st.phantoms.discard(head)


@_tallied(folio=True)
def folio_share_associate(st, pfn, npages, mapping, index, shared):
    """dax_associate_entry(entry, mapping, vma, address, bool shared) of v6.15+."""
    entry_order = PMD_ORDER if npages == PMD_NPAGES else 0
    folio, folio_order = _page_folio(st, pfn)  # dax_to_folio(entry)
    was_shared = _dax_folio_is_shared(st, folio)
    st.count("associate_calls")
    if shared and (st.mapping[folio] != NULL or was_shared):
        if st.mapping[folio] != NULL:
            # dax_folio_make_shared(): folio->mapping = NULL; folio->share = 1
            _set_folio_words(st, folio, NULL, 1)
            st.count("flag_set")
        st.warn_on("associate_share_zero", st.index[folio] == 0)
        st.warn_on("associate_order_mismatch", entry_order != folio_order)
        _set_folio_words(st, folio, NULL, st.index[folio] + 1)  # folio->share++
        st.count("share_inc")
        st.count("page_updates")
        return 1
    if st.warn_on("associate_mapping_set", st.mapping[folio] != NULL):
        st.count("owner_overwritten")
    elif was_shared:  # Shared(k) re-owned without a WARN: the count is lost
        st.count("owner_overwritten")
        st.count("flag_clear")
    written = _dax_folio_init(st, pfn, entry_order)
    folio, _ = _page_folio(st, pfn)  # folio = dax_to_folio(entry)
    _set_folio_words(st, folio, mapping, index)
    st.count("page_updates", written)
    return written


def _dax_folio_init(st, pfn, entry_order):
    """dax_folio_init(entry); returns the struct pages it (and the caller) write."""
    _, folio_order = _page_folio(st, pfn)
    # Folio should have been split back to order-0 pages in dax_folio_put().
    st.warn_on("folio_init_order", folio_order != 0)
    if entry_order == 0:
        return 1
    # prep_compound_page(&folio->page, order): the 511 tail pages become compound tails;
    # daxsim shows them as (0, 0) while the folio is compound (see sim.memmap.layout).
    st.order[pfn // PMD_NPAGES] = PMD_ORDER
    for page in range(pfn + 1, pfn + PMD_NPAGES):
        st.mapping[page] = NULL
        st.index[page] = 0
        st.phantoms.discard(page)
    return PMD_NPAGES


@_tallied(folio=True)
def folio_share_disassociate(st, pfn, npages, mapping, trunc, *, reset=False):
    """dax_disassociate_entry(entry, mapping, trunc) of v6.15+: ``trunc`` is ignored."""
    folio, _ = _page_folio(st, pfn)
    st.count("disassociate_calls")
    return _dax_folio_put(st, folio, reset)


def _dax_folio_put(st, folio, reset):
    was_shared = _dax_folio_is_shared(st, folio)
    was_clean = st.mapping[folio] == NULL and st.index[folio] == 0
    if not was_shared:
        ref = 0
    else:
        ref = st.index[folio] - 1  # ref = --folio->share
        st.index[folio] = ref
        st.count("share_dec")
    if ref:
        st.count("page_updates")
        return 1
    if was_shared:
        st.count("flag_clear")
    _, order = _page_folio(st, folio)
    st.mapping[folio] = NULL  # folio->mapping = NULL
    if reset:
        st.index[folio] = 0  # dax_folio_reset_order(): folio->share = 0
    if order == 0:
        # v6.15+: index/share is NOT reset for an order-0 folio.
        if st.index[folio] != 0:
            st.phantoms.add(folio)  # a stale word now reads as Shared(index)
            st.count("flag_set")
        else:
            st.phantoms.discard(folio)
            if not was_clean:
                st.count("pages_reset")
        st.count("page_updates")
        return 1
    # folio_reset_order(): split back into 512 order-0 folios, mapping = NULL, share = 0.
    st.order[folio // PMD_NPAGES] = 0
    for page in range(folio, folio + (1 << order)):
        st.mapping[page] = NULL
        st.index[page] = 0
        st.phantoms.discard(page)
    st.count("pages_reset", 1 << order)
    st.count("page_updates", 1 << order)
    return 1 << order
