"""folio-share-reset as a user design: v6.15+ folio->share with the share word zeroed on every
final put, order 0 included (the effect of the unmerged famfs prep patch "dax: Factor out
dax_folio_reset_order() helper", Jan 2026, kernel-semantics.md §1d).

Use it wherever a design name is accepted::

    daxsim hunt --variant scenarios/designs/folio_share_reset_ext.py:FolioShareResetExt

The interface (``sim.memmap.Variant``): a class with a ``name`` and the per-page reference
transcription -- ``associate(state, pfn, npages, mapping, index, flag)`` and
``disassociate(state, pfn, npages, mapping, trunc)`` -- working on ``state`` (a
``sim.memmap.PageState``: ``mapping``/``index`` per page, ``order`` per 512-page block,
``warn_on(site, cond)``, ``count(counter)``, ``phantoms``). A compiled batch kernel is
optional: with ``op_kernel = batch_kernel = None`` the memmap runs this reference, page by
page (slower, same results). ``folio = True`` (inherited) tells daxsim the state is kept per
folio, which selects the folio definition of "association truth" in ``daxsim hunt``.
"""

from __future__ import annotations

from sim.memmap import PMD_NPAGES, PMD_ORDER
from sim.memmap.variants import FolioShare


class FolioShareResetExt(FolioShare):
    """folio-share (v6.15+) whose final put always zeroes the share word."""

    name = "folio-share-reset-ext"
    aliases = ()
    kernels = "none"
    description = "user design: folio-share with share zeroed on every final put (order 0 too)"
    in_kernel = False
    op_kernel = None  # no compiled kernel: the per-page reference below is used
    batch_kernel = None

    # associate() is inherited unchanged from the v6.15 reference transcription.

    def disassociate(self, state, pfn, npages, mapping, trunc):
        """dax_disassociate_entry() -> dax_folio_put(), with dax_folio_reset_order() zeroing
        ``share`` for every order. ``trunc`` is ignored, as in v6.15+."""
        block = pfn // PMD_NPAGES
        if state.order[block] == PMD_ORDER:
            head, order = block * PMD_NPAGES, PMD_ORDER
        else:
            head, order = pfn, 0
        state.count("disassociate_calls")
        if state.mapping[head] == 0 and state.index[head] != 0:  # dax_folio_is_shared()
            state.index[head] = state.index[head] - 1  # ref = --folio->share
            state.count("share_dec")
            if state.index[head] != 0:
                state.count("page_updates")
                return 1
            state.count("flag_clear")
        was_set = state.mapping[head] != 0 or state.index[head] != 0
        # final put: folio->mapping = NULL; dax_folio_reset_order(): folio->share = 0
        state.mapping[head] = 0
        state.index[head] = 0
        state.phantoms.discard(head)
        if order == 0:
            if was_set:
                state.count("pages_reset")
            state.count("page_updates")
            return 1
        # split the order-9 folio back into 512 order-0 folios
        state.order[block] = 0
        for page in range(head, head + PMD_NPAGES):
            state.mapping[page] = 0
            state.index[page] = 0
            state.phantoms.discard(page)
        state.count("pages_reset", PMD_NPAGES)
        state.count("page_updates", PMD_NPAGES)
        return PMD_NPAGES
