"""The fsdax layer: address_spaces with DAX xarrays over a reflink filesystem.

:class:`DaxFS` owns a :class:`sim.fs.FileSystem` (the data and the block maps), a
:class:`sim.memmap.MemMap` (one struct page per fs block: ``pfn == physical block``), one
address_space per inode (mapping id = ``ino``) holding a :class:`~sim.dax.xarray_dax.DaxXArray`,
and processes with ``MAP_SHARED`` mappings. Faults, ``write(2)``, remaps, truncation and memory
failure follow the fault rules of the memmap's design (``Variant.fault_rules``, a
:class:`~sim.memmap.fault_rules.FaultRules`: which flag reaches associate, when an entry is
replaced, the DIRTY/TOWRITE marks, the invalidation after CoW; kernel-semantics.md §1-§4).

Data contents are the filesystem's, per physical block. A store through a mapping lands in
the file's current block (the write fault made it private); a load reads the block its PTE or
PMD maps (:meth:`DaxFS.load`), which is the file's current block except where a generation
without ``invalidate_remapped`` (6.0-6.1) left a page-table entry on a block write(2) CoW'd
away: the load then reads the old block, whoever owns it now (the 6.0 data corruption).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sim.constants import DEFAULT_DESIGN, PAGE_SIZE, PMD_ORDER, PMD_SIZE
from sim.dax.xarray_dax import (
    DAX_EMPTY,
    DAX_PMD,
    DAX_SHIFT,
    DAX_ZERO_PAGE,
    MARK_DIRTY,
    MARK_TOWRITE,
    PG_PMD_COLOUR,
    PG_PMD_NR,
    XA_CHUNK_SHIFT,
    DaxXArray,
)
from sim.fs import WRITTEN, FileSystem, FsError
from sim.memmap import MemMap, get_variant
from sim.memmap.fault_rules import GENERATIONS, RULES_BY_GENERATION, FaultRules, holds
from sim.work import WorkRecord

__all__ = ["DaxFS", "Vma", "MemoryFailureResult", "generation_of", "GENERATIONS"]


#: Zero-page pfn marker in page tables (my_zero_pfn is DRAM, not a pmem page).
ZERO_PFN = -1
_ZERO_VALUE = DAX_ZERO_PAGE
_VA_BASE = 1 << 40
#: Last page index of a whole-file range (``0, LLONG_MAX`` in bytes).
_WHOLE_FILE = (1 << 63) // PAGE_SIZE

#: Locked read-modify-writes on the folio when a refcounted fsdax folio (v6.15+, Popple's
#: "fs/dax: properly refcount fs dax pages", 38607c62b34b) is mapped, by PMD (True) or PTE:
#: ``dax_fault_iter``'s ``folio_ref_inc`` and ``folio_put`` around the insert, the insert's
#: ``folio_get`` (``insert_page_into_pte_locked`` / ``insert_pmd``) and its rmap:
#: ``folio_add_file_rmap_pte`` increments ``page->_mapcount``, ``folio_add_file_rmap_pmd``
#: ``_entire_mapcount`` and ``_nr_pages_mapped`` (in the folio's second struct page).
#: Up to v6.14 fsdax PTEs and PMDs are ``pte_mkdevmap``/``pmd_mkdevmap`` pfn mappings
#: (``vmf_insert_mixed``, ``vmf_insert_pfn_pmd``): no struct page is touched to map them.
_FOLIO_MAP_ATOMICS = {False: 4, True: 5}
#: ... and when it is unmapped (``zap_pte_range`` / ``zap_huge_pmd``): the rmap removal
#: (``folio_remove_rmap_pte``/``_pmd``) and the deferred ``folio_put`` of the mmu_gather.
#: Up to v6.14 a DAX VMA's PTEs are special (``vm_normal_page`` gives NULL) and its PMDs
#: ``vma_is_special_huge``: the zap touches no struct page.
_FOLIO_UNMAP_ATOMICS = {False: 2, True: 3}
#: What the zap of a PMD whose folio was reset under it (see ``DaxFS._zap_pmd``) leaves in
#: the ``mapping`` word of the folio's second struct page: ``folio->_entire_mapcount`` (that
#: word's low half in struct folio's second page, v6.15+), zeroed by the reset's
#: ``f->mapping = NULL``, decremented to -1 by ``folio_remove_rmap_pmd``; ``_pincount``
#: (the high half) stays 0. Observed on 6.18 and 7.3 (stale-pmd-cow-write.xfsio).
CLOBBERED_MAPPING = 0xFFFFFFFF
#: A write fault on a page already mapped read-only keeps its PTE/PMD (``insert_page`` /
#: ``insert_pmd`` with ``mkwrite`` only make it writable): ``folio_ref_inc``/``folio_put``.
_FOLIO_UPGRADE_ATOMICS = 2


def _any_mapped(vmas) -> bool:
    """Whether any of the VMAs has a PTE or PMD installed."""
    for v in vmas:
        if v.ptes or v.pmds:
            return True
    return False


def generation_of(variant_name: str) -> str:
    """Name of the fault rules of a registered design (``"6.2"`` for an unknown name: the
    rules proposed designs build on)."""
    try:
        return get_variant(variant_name).fault_rules.generation
    except Exception:  # noqa: BLE001 - an unknown name: the default rules
        return RULES_BY_GENERATION["6.2"].generation


@dataclass
class Vma:
    """One ``MAP_SHARED`` mapping of a file.

    Attributes
    ----------
    vid : int
        Mapping id (unique in the DaxFS).
    pid : int
        Owning process.
    ino : int
        Mapped file.
    pgoff : int
        File page offset of the first page.
    npages : int
        Length in pages.
    writable : bool
        ``PROT_WRITE``.
    va_start : int
        Virtual address of the first page (PMD colour matches ``pgoff``).
    ptes, pmds : dict of int to (int, bool)
        Installed PTEs by file page index and PMDs by 512-aligned file index:
        ``(pfn, writable)``; pfn ``-1`` is the zero page.
    pte_tables : set of int
        2 MiB virtual regions (``va // PMD_SIZE``) that have a PTE table: made by the first
        PTE installed there, kept when the PTEs are zapped (``unmap_mapping_pages`` leaves
        the table), freed with the mapping (``free_pgtables`` at munmap).
    """

    vid: int
    pid: int
    ino: int
    pgoff: int
    npages: int
    writable: bool
    va_start: int
    ptes: dict = field(default_factory=dict)
    pmds: dict = field(default_factory=dict)
    pte_tables: set = field(default_factory=set)

    def va(self, index: int) -> int:
        """Virtual address of file page ``index``."""
        return self.va_start + (index - self.pgoff) * PAGE_SIZE

    def covers(self, index: int) -> bool:
        """Whether file page ``index`` lies inside the mapping."""
        return self.pgoff <= index < self.pgoff + self.npages

    def lookup(self, index: int):
        """``(pfn, writable)`` mapping ``index`` or None."""
        t = self.ptes.get(index)
        if t is not None:
            return t
        p = self.pmds.get(index & ~PG_PMD_COLOUR)
        if p is not None:
            return p[0] + (index & PG_PMD_COLOUR) if p[0] >= 0 else ZERO_PFN, p[1]
        return None


@dataclass
class MemoryFailureResult:
    """Outcome of one memory failure (``MADV_HWPOISON`` over a range).

    Attributes
    ----------
    pfns : list of int
        Poisoned pfns, in range order.
    rmap_owners : dict of int to list of (int, int)
        Per pfn, ``(ino, file_page)`` found by the filesystem's reverse map.
    fallback_owners : dict of int to list of (int, int)
        Per pfn, ``(ino, file_page)`` found from ``page->mapping/index`` (at most one).
    path : str
        ``"rmap"`` or ``"page_mapping"``: which path acted.
    signalled : list of (int, str)
        ``(pid, code)`` signalled: ``"BUS_MCEERR_AR"`` to the poisoner, ``"BUS_MCEERR_AO"``
        to early-kill processes.
    unmapped : list of (int, int)
        ``(vid, index)`` PTE/PMD unmapped in the mappers.
    sigbus_poisoner : bool
        The poisoning process received SIGBUS.
    errno : str or None
        ``"EBUSY"`` when the path found no owner to lock (``dax_lock_page`` cookie 0).
    """

    pfns: list = field(default_factory=list)
    rmap_owners: dict = field(default_factory=dict)
    fallback_owners: dict = field(default_factory=dict)
    path: str = "rmap"
    signalled: list = field(default_factory=list)
    unmapped: list = field(default_factory=list)
    sigbus_poisoner: bool = False
    errno: str | None = None


class _Space:
    """One address_space: the DAX xarray and the VMAs mapping the inode (``i_mmap``)."""

    __slots__ = ("mid", "ino", "xa", "vmas")

    def __init__(self, mid: int, ino: int):
        self.mid = mid
        self.ino = ino
        self.xa = DaxXArray(mid)
        self.vmas: list[Vma] = []


class DaxFS:
    """A DAX-mounted reflink filesystem on a simulated pmem device.

    Parameters
    ----------
    nblocks : int
        Device size in 4 KiB blocks (= pages of the memmap).
    variant : str
        Memmap design variant; its ``fault_rules`` select the fault paths.
    fill_byte : int, optional
        Raw device content before mkfs (see ``@scratch_dev_fill``).
    rmap : bool
        The filesystem has the rmapbt feature: memory failure uses the reverse map;
        otherwise the ``page->mapping`` fallback acts.
    generation : str or FaultRules, optional
        Override the design's fault rules: a kernel generation's (``"5.19"``, ``"6.0"``,
        ``"6.2"``) or a :class:`~sim.memmap.fault_rules.FaultRules`.
    early_kill : bool
        ``vm.memory_failure_early_kill``: signal every mapper, not only the poisoner.
    fs_class : type, optional
        :class:`~sim.fs.FileSystem` or a subclass of it (the tests pass one that mirrors
        every call), called as ``fs_class(nblocks, fill_byte=..., stripe_unit_blocks=...)``;
        default :class:`~sim.fs.FileSystem`.
    accounting : bool
        Record the timing work of each operation.
    stripe_unit_blocks : int
        The filesystem's stripe unit in blocks (``mkfs.xfs -d su=``; 0 = none).
    """

    def __init__(
        self,
        nblocks: int,
        variant: str = DEFAULT_DESIGN,
        *,
        fill_byte=None,
        rmap: bool = True,
        generation: str | None = None,
        early_kill: bool = False,
        fs_class=None,
        accounting: bool = True,
        stripe_unit_blocks: int = 0,
    ):
        self.nblocks = int(nblocks)
        #: Record the timing work of each operation (cache lines of the xarray, page tables,
        #: extents and refcounts; locks; pmem traffic). Off, a record keeps only what the
        #: functional model itself reports: its ``struct_page`` lines (and atomics), warnings
        #: and counts
        #: (the hunt's searches, which price nothing, turn it off).
        self.accounting = bool(accounting)
        self.fs = (fs_class or FileSystem)(
            self.nblocks, fill_byte=fill_byte, stripe_unit_blocks=int(stripe_unit_blocks)
        )
        self.mm = MemMap(self.nblocks, variant)
        self.variant = self.mm.variant.name
        if isinstance(generation, FaultRules):
            rules = generation
        elif generation:
            if generation not in RULES_BY_GENERATION:
                raise ValueError(f"unknown generation {generation!r}; valid: {GENERATIONS}")
            rules = RULES_BY_GENERATION[generation]
        else:
            rules = self.mm.variant.fault_rules
        #: The fault and remap rules in force (the design's unless overridden).
        self.rules: FaultRules = rules
        self.gen = rules.generation
        self.rmap = bool(rmap)
        self.early_kill = bool(early_kill)
        self.spaces: dict[int, _Space] = {}
        self.vmas: dict[int, Vma] = {}
        self.processes: dict[int, list[int]] = {}
        self.signals: list[tuple[int, str]] = []
        self.hwpoisoned: set[int] = set()
        #: ``(vid, pmd index)`` of PMDs whose folio ``dax_folio_put`` reset while they mapped
        #: it (v6.15+: an invalidation deletes the entry before it unmaps)
        self._orphan_pmds: set[tuple[int, int]] = set()
        #: Called with every operation's WorkRecord (``daxsim xfsio --timing`` prices them).
        self.record_hook = None
        self._entry_hook = None
        self._next_vid = 1
        self._w0: int | None = None
        self._next_va = _VA_BASE
        self.stats = {
            "cow_pages": 0,
            "cow_bytes": 0,
            "blocks_allocated": 0,
            "blocks_freed": 0,
            "refcount_changes": 0,
            "faults": 0,
            "pmd_faults": 0,
            "pte_faults": 0,
            "pmd_fallbacks": 0,
            "pmd_sigbus": 0,
            "entries_inserted": 0,
            "entries_removed": 0,
            "stale_entries_left": 0,
            "bytes_deduped": 0,
        }

    # ================================================================= helpers
    def _space(self, ino: int) -> _Space:
        a = self.spaces.get(ino)
        if a is None:
            a = self.spaces[ino] = _Space(self.mapping_id(ino), ino)
            a.xa.listener = self._entry_hook
        return a

    @property
    def entry_hook(self):
        """Called as ``hook(mapping_id, index, old, new)`` after every DAX entry stored
        (``old`` None) or erased (``new`` None) in any address_space, eviction included;
        ``index`` is the file page the entry is associated at (for an order-0 entry in a PMD
        entry's slot, its own page, not the slot's: :meth:`DaxXArray.store_in_slot`); None:
        no hook. Setting it installs it on every in-core address_space."""
        return self._entry_hook

    @entry_hook.setter
    def entry_hook(self, fn) -> None:
        self._entry_hook = fn
        for a in self.spaces.values():
            a.xa.listener = fn

    @staticmethod
    def mapping_id(ino: int) -> int:
        """address_space id of inode ``ino`` (ids >= 1)."""
        return int(ino) if ino >= 1 else 1 - int(ino) + (1 << 30)

    def _warn_total(self) -> int:
        return self.mm.warning_total()

    def _account(self, ch, wr: WorkRecord, ino: int = 0) -> None:
        """Fold an FsChange into the stats and the work record."""
        if ch is None:
            return
        st = self.stats
        cow_bytes = ch.cow_bytes
        if ch.cow_blocks:
            st["cow_pages"] += ch.cow_blocks
        if cow_bytes:
            st["cow_bytes"] += cow_bytes
            wr.memcpy_bytes += cow_bytes
        if ch.blocks_allocated:
            st["blocks_allocated"] += ch.blocks_allocated
        if ch.blocks_freed:
            st["blocks_freed"] += ch.blocks_freed
        if ch.refcount_changes:
            st["refcount_changes"] += ch.refcount_changes
        if ch.bytes_deduped:
            st["bytes_deduped"] += ch.bytes_deduped
        if not self.accounting:
            return
        ne = ch.extent_records_touched
        if ne:
            base = int(ino) << 24
            wr.lines_written.setdefault("extent", []).extend(range(base, base + min(ne, 1 << 20)))
        nr = ch.refcount_records_touched
        if nr:
            wr.lines_written.setdefault("refcount", []).extend(range(0, min(nr, 1 << 20)))
        if ch.pmem_read:
            wr.pmem_read.extend(ch.pmem_read)
        if ch.pmem_write:
            wr.pmem_write.extend(ch.pmem_write)

    def _entry_pages(
        self, a: _Space, index: int, value: int, wr: WorkRecord, assoc: bool, shared_or_trunc: bool
    ) -> None:
        """Associate or disassociate a real entry with the memmap."""
        if value & (DAX_ZERO_PAGE | DAX_EMPTY):
            return  # dax_entry_size() == 0: never touches struct pages
        pfn = value >> DAX_SHIFT
        n = PG_PMD_NR if value & DAX_PMD else 1
        mm = self.mm
        if self._w0 is None:
            self._w0 = mm.warning_total()
        if assoc:
            w = mm.associate(pfn, n, a.mid, index, shared_or_trunc)
        else:
            self._put_refcount_check(a, index, pfn)
            w = mm.disassociate(pfn, n, a.mid, shared_or_trunc)
        if w:
            wr.lines_written.setdefault("struct_page", []).extend(range(pfn, pfn + int(w)))

    def _put_refcount_check(self, a: _Space, index: int, pfn: int) -> None:
        """The refcount check of ``dax_folio_put`` before ``dax_disassociate_entry`` puts the
        folio holding ``pfn`` (the entry at file page ``index`` of ``a``; designs with
        ``put_refcount_min_order``, v6.15+).

        The put is final when the folio is not shared (``!dax_folio_is_shared``: an owner, or
        a NULL word with share 0) or its share drops to 0; the folio is then reset and each
        of its pages checked with ``WARN_ON_ONCE(folio_ref_count(page))``. From v6.15 every
        PTE or PMD mapping a page of the folio holds one reference on it (``folio_get`` in
        ``insert_page_into_pte_locked`` / ``insert_pmd``, put at the zap), and pins aside
        (not modelled) nothing else does, so the WARN fires (once: the head's count; tail
        pages count 0) when a mapping still maps a page of the folio. Paths that unmap before
        they delete (truncate, punch, layout breaking, the replacing fault) never get here
        mapped; ``invalidate_inode_pages2_range`` deletes the entries first and unmaps after
        (6.2+ write(2) CoW, ``IOMAP_F_NEW`` ranges).

        Only the file's own mappings at the folio's own offsets are looked at (dictionary
        lookups, not a scan of every page table): a PTE of another file comes with an entry
        of that file, which keeps the folio shared (the put is not final), and from v6.2 no
        path leaves a PTE on a block its file no longer has there."""
        mm = self.mm
        min_order = mm.variant.put_refcount_min_order
        if min_order is None or not a.vmas:
            return
        head, order, m, share = mm.folio(pfn)
        if order < min_order or (m == 0 and share > 1):
            return  # checked only from that order on / not the final put
        hi = head + (1 << order)
        first = index - (pfn - head)  # the file page of the folio's head
        last = first + (1 << order) - 1
        chunks = {first & ~PG_PMD_COLOUR, last & ~PG_PMD_COLOUR}
        mapped = False
        for vma in a.vmas:
            if vma.pmds:
                for c in chunks:
                    pm = vma.pmds.get(c)
                    if pm is not None and 0 <= pm[0] < hi and head < pm[0] + PG_PMD_NR:
                        mapped = True
                        if order:  # the PMD now maps order-0 pages: see _zap_pmd
                            self._orphan_pmds.add((vma.vid, c))
            ptes = vma.ptes
            if mapped or not ptes:
                continue
            if last - first < len(ptes):
                idx = (j for j in range(first, last + 1) if j in ptes)
            else:
                idx = (j for j in ptes if first <= j <= last)
            for j in idx:
                if head <= ptes[j][0] < hi:
                    mapped = True
                    break
        if mapped:
            mm.count_warning("folio_put_refcount")

    def _zap_pmd(self, vma: Vma, c: int, pfn: int, wr: WorkRecord) -> None:
        """The zap of PMD ``c`` of ``vma`` (``zap_huge_pmd``, or ``__split_huge_pmd_locked``
        for a partial range) after ``dax_folio_put`` reset its order-9 folio under it (v6.15+):
        ``folio_remove_rmap_pmd`` runs on the head's folio, now of order 0, and decrements
        ``_entire_mapcount``, which sits in the ``mapping`` word of the second struct page:
        that page reads a non-NULL mapping (:data:`CLOBBERED_MAPPING`) no address_space has,
        so a later shared fault there counts it shared (``dax_folio_make_shared``: share 2)
        and a later owner fault WARNs (``WARN_ON_ONCE(folio->mapping)``). Approximated: only
        a second page still at ``(NULL, 0)`` is written (a page re-associated meanwhile is
        left), and its index word is left as it is."""
        if not self._orphan_pmds or (vma.vid, c) not in self._orphan_pmds:
            return
        self._orphan_pmds.discard((vma.vid, c))
        if pfn >= 0 and pfn + 1 < self.nblocks:
            self.mm.clobber_mapping(pfn + 1, CLOBBERED_MAPPING)
            wr.lines_written.setdefault("struct_page", []).append(pfn + 1)

    def _folio_refs(
        self, wr: WorkRecord, pfn: int, pmd: bool, mapped: bool, *, upgrade: bool = False
    ) -> None:
        """The folio reference and map counts a PTE or PMD of ``pfn`` takes (``mapped``) or
        drops, for a design with refcounted folios (v6.15+; see ``_FOLIO_MAP_ATOMICS``);
        ``upgrade``: a write fault on ``pfn`` mapped already (``_FOLIO_UPGRADE_ATOMICS``).

        Recorded with accounting off too: they are ``struct_page`` lines, which every record
        keeps."""
        if pfn < 0 or not self.mm.variant.folio:
            return
        if upgrade:
            keys = (self.mm.folio(pfn)[0],)  # the head's _refcount
        elif pmd:
            keys = (pfn, pfn + 1)  # head: _refcount; second page: the folio's map counts
        else:
            head = self.mm.folio(pfn)[0]
            keys = (pfn,) if head == pfn else (head, pfn)  # _refcount; page->_mapcount
        wr.lines_written.setdefault("struct_page", []).extend(keys)
        if upgrade:
            wr.atomics += _FOLIO_UPGRADE_ATOMICS
        else:
            wr.atomics += (_FOLIO_MAP_ATOMICS if mapped else _FOLIO_UNMAP_ATOMICS)[pmd]

    @staticmethod
    def _pt_key(vma: Vma, index: int, pmd: bool) -> int:
        va = vma.va_start + (index - vma.pgoff) * PAGE_SIZE
        if pmd:
            return (vma.pid << 40) | (1 << 38) | (va >> 24)
        return (vma.pid << 40) | ((va >> 15) & ((1 << 38) - 1))

    def _unmap_index_range(self, a: _Space, first: int, last: int, wr: WorkRecord) -> int:
        """``unmap_mapping_pages`` over file pages ``[first, last]`` in every VMA."""
        n = 0
        for vma in a.vmas:
            lo = max(first, vma.pgoff)
            hi = min(last, vma.pgoff + vma.npages - 1)
            if lo > hi:
                continue
            hit = 0
            ptes = vma.ptes
            if ptes:
                if hi - lo + 1 <= 2 * len(ptes):
                    idx = [i for i in range(lo, hi + 1) if i in ptes]
                else:
                    idx = [i for i in ptes if lo <= i <= hi]
                if idx:
                    if self.accounting:
                        keys = wr.lines_written.setdefault("pagetable", [])
                        for i in idx:
                            keys.append(self._pt_key(vma, i, False))
                    for i in idx:
                        self._folio_refs(wr, ptes.pop(i)[0], False, False)
                    hit += len(idx)
            if vma.pmds:
                for c in [c for c in vma.pmds if c <= hi and c + PG_PMD_NR - 1 >= lo]:
                    pfn = vma.pmds.pop(c)[0]
                    self._zap_pmd(vma, c, pfn, wr)
                    hit += 1
                    if self.accounting:
                        wr.write("pagetable", self._pt_key(vma, c, True))
                    self._folio_refs(wr, pfn, True, False)
            if hit:
                wr.tlb_shootdowns += 1
                n += hit
        return n

    def _remove_entries(
        self,
        a: _Space,
        first: int,
        last: int,
        trunc: bool,
        wr: WorkRecord,
        *,
        clear_dirty: bool = False,
    ) -> int:
        """Remove the entries intersecting ``[first, last]``.

        ``trunc=True``: ``dax_delete_mapping_entry`` (truncate, punch, unlink, eviction);
        the PTEs over the range are unmapped first (``truncate_pagecache_range``).
        ``trunc=False``: ``invalidate_inode_pages2_range`` (``dax_invalidate_mapping_entry_sync``
        per entry, which skips DIRTY/TOWRITE entries unless ``clear_dirty``:
        ``__dax_clear_dirty_range`` ran first), then ``unmap_mapping_pages`` over the range:
        the entries go while the PTEs still map their pages.
        """
        if last < first:
            return 0
        if trunc:
            self._unmap_index_range(a, first, last, wr)
        xa = a.xa
        if not xa.entries:
            if not trunc:
                self._unmap_index_range(a, first, last, wr)
            return 0
        acct = self.accounting
        if acct:
            wr.locks.append(("xa_lock", a.mid))
        removed = 0
        for idx in xa.range_indices(first, last):
            if not trunc and not clear_dirty and xa.marks.get(idx, 0) & (MARK_DIRTY | MARK_TOWRITE):
                continue
            if acct:
                wr.lines_read.setdefault("xarray_node", []).extend(xa.walk_keys(idx))
            at = xa.wide.get(idx, idx)
            value = xa.erase(idx)
            self._entry_pages(a, at, value, wr, False, trunc)
            removed += 1
        if removed and acct:
            wr.lines_written.setdefault("xarray_node", []).extend(xa.walk_keys(first))
        self.stats["entries_removed"] += removed
        if not trunc:
            self._unmap_index_range(a, first, last, wr)
        return removed

    def _after_remap(self, ch, wr: WorkRecord, *, clear_dirty: bool = True) -> None:
        """Entries over blocks the filesystem remapped (CoW by write/zero/unshare) and over
        newly written holes.

        Remapped: invalidated under ``rules.invalidate_remapped`` (6.2+:
        ``invalidate_inode_pages2_range``, after clearing DIRTY when ``clear_dirty`` and
        ``rules.clear_dirty_first``); otherwise (6.0-6.1: ``dax_iomap_iter`` tests only
        ``IOMAP_F_NEW``) left alone: the entry stays on the old pfn (stale) and so do the
        PTEs and PMDs mapping it, so loads through them read the old block (:meth:`load`).
        Newly mapped ranges (IOMAP_F_NEW: zero-page entries) are invalidated in every
        generation.
        """
        if ch is None or not (ch.remapped or ch.newly_mapped):
            return
        # remapped: invalidated under rules.invalidate_remapped (after __dax_clear_dirty_range
        # when asked and rules.clear_dirty_first); newly mapped (IOMAP_F_NEW): invalidated by
        # every generation, but without clear_dirty_first its dirty zero entries survive
        # (healed by the next fault)
        rules = self.rules
        clear = clear_dirty and rules.clear_dirty_first
        spaces = self.spaces
        for ranges, inval in (
            (ch.remapped, rules.invalidate_remapped),
            (ch.newly_mapped, True),
        ):
            for ino, fb, n in ranges or ():
                a = spaces.get(ino)
                if a is None or not (a.xa.entries or _any_mapped(a.vmas)):
                    continue
                first, last = fb, fb + n - 1
                if inval:
                    self._remove_entries(a, first, last, False, wr, clear_dirty=clear)
                else:  # 6.0-6.1: entries and page-table entries stay on the old pfn
                    self.stats["stale_entries_left"] += len(a.xa.range_indices(first, last))

    def _break_layout(self, ino: int, wr: WorkRecord) -> None:
        """``xfs_break_dax_layouts`` on ``ino`` before reflink, dedupe, fallocate and truncate,
        as ``rules.break_layout`` says: ``"unmap"`` (v4.17-v6.14: ``dax_layout_busy_page_range``
        -> ``unmap_mapping_pages`` over the whole file), ``"unmap_delete"`` (v6.15+:
        ``dax_break_layout`` also runs ``dax_delete_mapping_range``, trunc=true), ``"none"``."""
        how = self.rules.break_layout
        a = self.spaces.get(ino)
        if how == "none" or a is None:
            return
        self._busy_scan(a, how == "unmap_delete", wr)
        if how == "unmap_delete":
            self._remove_entries(a, 0, _WHOLE_FILE, True, wr)
        else:
            self._unmap_index_range(a, 0, _WHOLE_FILE, wr)

    def _busy_scan(self, a: _Space, folios: bool, wr: WorkRecord) -> None:
        """The struct pages ``dax_layout_busy_page_range`` reads over the whole file: for
        each real entry, ``dax_busy_page(entry)``. Up to v6.14 (``folios`` False) it reads
        ``page_ref_count`` of every page of the entry (``for_each_mapped_pfn``: 512 for a PMD
        entry), and only when the file is mapped (``mapping_mapped``); from v6.15
        (Popple's series dropped the ``mapping_mapped`` test) it reads the folio's
        ``folio_ref_count`` and ``folio_mapcount`` (its head, and the second struct page of
        an order-9 folio). No page is ever busy here (refcounts are not modelled), so the
        scan runs to the end. Recorded with accounting off too (``struct_page`` lines)."""
        xa = a.xa
        if not xa.entries or not (folios or a.vmas):
            return
        acct = self.accounting
        if acct:
            wr.locks.append(("xa_lock", a.mid))
        keys = wr.lines_read.setdefault("struct_page", [])
        for idx, value in sorted(xa.entries.items()):
            if value & (DAX_ZERO_PAGE | DAX_EMPTY):
                continue
            if acct:
                wr.lines_read.setdefault("xarray_node", []).extend(xa.walk_keys(idx))
            pfn = value >> DAX_SHIFT
            if folios:
                head, order = self.mm.folio(pfn)[:2]
                keys.extend((head, head + 1) if order else (head,))
            else:
                keys.extend(range(pfn, pfn + (PG_PMD_NR if value & DAX_PMD else 1)))
        if not keys:
            del wr.lines_read["struct_page"]

    @staticmethod
    def _blocks(off: int, length: int) -> tuple[int, int]:
        """Pages ``[first, last]`` touched by a byte range (last < first when empty)."""
        if length <= 0:
            return 0, -1
        return off // PAGE_SIZE, (off + length - 1) // PAGE_SIZE

    def _wr(self, op: str) -> tuple[WorkRecord, int]:
        self._w0 = None  # read lazily by _entry_pages before the first memmap update
        return WorkRecord(op), 0

    def _done(self, wr: WorkRecord, w0: int) -> WorkRecord:
        if self._w0 is not None:
            wr.warnings += self.mm.warning_total() - self._w0
            self._w0 = None
        if self.record_hook is not None:
            self.record_hook(wr)
        return wr

    # ================================================================= file ops
    def open(
        self, path: str, *, create: bool = False, trunc: bool = False, hold: bool = False
    ) -> tuple[int, WorkRecord]:
        """``open(2)``; O_TRUNC truncates to 0 (entries removed with trunc semantics). With
        ``hold`` the open file keeps a reference on the inode until :meth:`close` (an
        unlinked file stays while it is open); without it the caller keeps no file."""
        wr, w0 = self._wr("open")
        if not trunc:
            ino = self.fs.open(path, create=create)
        else:
            ino, ch = self.fs.open_ex(path, create=create, trunc=trunc)
            self._break_layout(ino, wr)
            self._account(ch, wr, ino)
            self._truncate_entries(ino, 0, wr)
            self._after_remap(ch, wr)
        if hold:
            self.fs.hold(ino)
        return ino, self._done(wr, w0)

    def _truncate_entries(self, ino: int, size: int, wr: WorkRecord) -> None:
        a = self.spaces.get(ino)
        if a is not None:
            first = -(-size // PAGE_SIZE)
            mx = a.xa.max_index() if a.xa.entries else -1
            hi = max(mx, max((v.pgoff + v.npages for v in a.vmas), default=0))
            self._remove_entries(a, first, max(hi, first), True, wr)

    def _truncate(self, ino: int, size: int, wr: WorkRecord) -> None:
        ch = self.fs.truncate(ino, size)
        self._break_layout(ino, wr)
        self._account(ch, wr, ino)
        self._truncate_entries(ino, size, wr)
        self._after_remap(ch, wr)

    def truncate(self, ino: int, size: int) -> WorkRecord:
        """``ftruncate``: entries past the new EOF removed (trunc=true); a partial shared
        tail block is CoW-zeroed by the filesystem (6.2+ invalidates its entry)."""
        wr, w0 = self._wr("truncate")
        self._truncate(ino, int(size), wr)
        return self._done(wr, w0)

    def pwrite(
        self, ino: int, off: int, length: int, byte: int, *, buffer_bytes: int | None = None
    ) -> WorkRecord:
        """``write(2)``: copy-around CoW of shared blocks by the filesystem; entries over
        newly allocated blocks are invalidated (IOMAP_F_NEW, every generation), entries over
        CoW'd blocks are invalidated after clearing DIRTY in 6.2+ and left stale <= 6.1.
        ``buffer_bytes``: written as write(2) calls of that size (``FileSystem.pwrite``)."""
        wr, w0 = self._wr("pwrite")
        if buffer_bytes is None:
            ch = self.fs.pwrite(ino, off, length, byte)
        else:
            try:
                ch = self.fs.pwrite(ino, off, length, byte, buffer_bytes=buffer_bytes)
            except FsError as exc:
                if exc.partial is None:
                    raise
                # the write(2) calls before the failing one happened: their effects, then
                # the error
                self._account(exc.partial, wr, ino)
                self._after_remap(exc.partial, wr, clear_dirty=True)
                self._done(wr, w0)
                raise
        self._account(ch, wr, ino)
        wr.memcpy_bytes += max(0, int(length))
        self._after_remap(ch, wr, clear_dirty=True)
        return self._done(wr, w0)

    def pread(self, ino: int, off: int, length: int) -> tuple[bytes, WorkRecord]:
        """``read(2)`` (clipped at EOF): the bytes and the work (:meth:`read`)."""
        data = self.fs.pread(ino, off, length)
        return data, self.read(ino, off, length)

    def read(self, ino: int, off: int, length: int) -> WorkRecord:
        """The work of ``read(2)`` of ``[off, off + length)`` clipped at EOF, without producing
        the bytes (a scenario's reads and an un-printed ``pread`` need only the work; a read
        of a huge sparse range costs its block map, not its length)."""
        if off < 0 or length < 0:
            raise FsError("EINVAL", "negative offset or length")
        wr, w0 = self._wr("pread")
        n = min(off + length, self.fs.size(ino)) - off
        if n > 0:
            first, last = self._blocks(off, n)
            for e in self.fs.bmap(ino, first, last - first + 1):
                if e.pblock >= 0 and e.state == WRITTEN:
                    wr.pmem_read.append((e.pblock * PAGE_SIZE, e.nblocks * PAGE_SIZE))
            wr.memcpy_bytes += n
        return self._done(wr, w0)

    def _range_op(
        self,
        opname: str,
        ino: int,
        off: int,
        length: int,
        fn,
        *,
        remove: bool,
        clear_dirty: bool = True,
    ) -> WorkRecord:
        wr, w0 = self._wr(opname)
        ch = fn()
        self._break_layout(ino, wr)  # xfs_file_fallocate: xfs_break_layouts, every mode
        self._account(ch, wr, ino)
        a = self.spaces.get(ino)
        if a is not None and remove and length > 0:
            # xfs_flush_unmap_range: block-rounded truncate_pagecache_range
            first, last = self._blocks(off, length)
            self._remove_entries(a, first, last, True, wr)
        self._after_remap(ch, wr, clear_dirty=clear_dirty)
        return self._done(wr, w0)

    def fallocate(self, ino: int, off: int, length: int, *, keep_size: bool = False) -> WorkRecord:
        """``fallocate`` mode 0 (preallocation: no entry changes)."""
        return self._range_op(
            "fallocate",
            ino,
            off,
            length,
            lambda: self.fs.fallocate(ino, off, length, keep_size=keep_size),
            remove=False,
        )

    def punch(self, ino: int, off: int, length: int) -> WorkRecord:
        """``FALLOC_FL_PUNCH_HOLE``: entries over the range removed (trunc=true)."""
        return self._range_op(
            "punch", ino, off, length, lambda: self.fs.punch(ino, off, length), remove=True
        )

    def zero_range(self, ino: int, off: int, length: int, *, keep_size: bool = False) -> WorkRecord:
        """``FALLOC_FL_ZERO_RANGE``: entries over the range removed (trunc=true)."""
        return self._range_op(
            "zero_range",
            ino,
            off,
            length,
            lambda: self.fs.zero_range(ino, off, length, keep_size=keep_size),
            remove=True,
        )

    def unshare(self, ino: int, off: int, length: int) -> WorkRecord:
        """``FALLOC_FL_UNSHARE_RANGE``: 6.2+ invalidates the unshared blocks' entries."""
        return self._range_op(
            "unshare",
            ino,
            off,
            length,
            lambda: self.fs.unshare(ino, off, length),
            remove=False,
            clear_dirty=False,
        )

    def clone(
        self, dst: int, src: int, src_off: int = 0, dst_off: int = 0, length: int | None = None
    ) -> WorkRecord:
        """FICLONE / FICLONERANGE.

        The remap prep (``__generic_remap_file_range_prep``) first writes back both ranges
        (``filemap_write_and_wait_range``: DIRTY entries cleaned, their PTEs write-protected,
        so a later store to a now-shared block faults and CoWs); then the destination
        range's entries are removed (``xfs_reflink_remap_prep`` → ``xfs_flush_unmap_range``).
        """
        wr, w0 = self._wr("clone")
        if length is None or length == 0:
            eff = max(0, self.fs.size(src) - src_off)
        else:
            eff = length
        ch = self.fs.clone(dst, src, src_off=src_off, dst_off=dst_off, length=length)
        # xfs_reflink_remap_prep: xfs_ilock2_io_mmap breaks both files' layouts first
        self._break_layout(src, wr)
        self._break_layout(dst, wr)
        if eff > 0:  # after the checks that fail the call; commutes with the remap itself
            self._writeback(src, src_off, eff, wr)
            self._writeback(dst, dst_off, eff, wr)
        self._account(ch, wr, dst)
        a = self.spaces.get(dst)
        if a is not None and eff > 0:
            first, last = self._blocks(dst_off, eff)
            self._remove_entries(a, first, last, True, wr)
        self._after_remap(ch, wr)
        return self._done(wr, w0)

    def dedupe(self, dst: int, src: int, src_off: int, dst_off: int, length: int) -> WorkRecord:
        """FIDEDUPERANGE (EBADE raised by the filesystem when the bytes differ); both ranges
        are written back first, as for :meth:`clone`."""
        wr, w0 = self._wr("dedupe")
        try:
            ch = self.fs.dedupe(dst, src, src_off, dst_off, length)
        except FsError as err:
            if err.errno == "EBADE":  # the compare runs after the layouts and the write-back
                self._break_layout(src, wr)
                self._break_layout(dst, wr)
                self._writeback(src, src_off, length, wr)
                self._writeback(dst, dst_off, length, wr)
            raise
        self._break_layout(src, wr)
        self._break_layout(dst, wr)
        if length > 0:
            self._writeback(src, src_off, length, wr)
            self._writeback(dst, dst_off, length, wr)
        self._account(ch, wr, dst)
        a = self.spaces.get(dst)
        if a is not None and length > 0:
            first, last = self._blocks(dst_off, length)
            self._remove_entries(a, first, last, True, wr)
        self._after_remap(ch, wr)
        return self._done(wr, w0)

    def _evict(self, ino: int, wr: WorkRecord) -> None:
        """Inode eviction: every entry removed with trunc=true, mappings torn down.

        Then ``clear_inode()`` (fs/inode.c, every release) takes the ``i_pages`` lock with
        interrupts off and does ``BUG_ON(inode->i_data.nrpages)``: an order-0 entry removed
        from a multi-index slot (:meth:`DaxXArray.store_in_slot`) left 511 pages counted,
        and the BUG fires (``clear_inode_nrpages``; seen at fs/inode.c:673 on 6.12.118, :753
        on 6.18.15, :776 on 7.3.4). The oops kills the evicting task with the lock held: an
        unmount there never returns (the kernels hang), and daxsim goes on."""
        a = self.spaces.pop(ino, None)
        if a is None:
            return
        for vma in a.vmas:
            if vma.ptes or vma.pmds:
                self._unmap_folios(vma, wr)
                vma.ptes.clear()
                vma.pmds.clear()
                wr.tlb_shootdowns += 1
        xa = a.xa
        if xa.entries:
            acct = self.accounting
            if acct:
                wr.locks.append(("xa_lock", a.mid))
            for idx in sorted(xa.entries):
                if acct:
                    wr.write("xarray_node", *xa.walk_keys(idx))
                at = xa.wide.get(idx, idx)
                value = xa.erase(idx)
                self._entry_pages(a, at, value, wr, False, True)
                self.stats["entries_removed"] += 1
        if xa.nrpages:
            if self._w0 is None:
                self._w0 = self.mm.warning_total()
            self.mm.count_warning("clear_inode_nrpages")

    def _unmap_folios(self, vma: Vma, wr: WorkRecord) -> None:
        """The folio counts dropped by zapping every PTE and PMD of ``vma`` (v6.15+)."""
        if self.mm.variant.folio:
            for pfn, _w in vma.ptes.values():
                self._folio_refs(wr, pfn, False, False)
            for c, (pfn, _w) in vma.pmds.items():
                self._zap_pmd(vma, c, pfn, wr)
                self._folio_refs(wr, pfn, True, False)

    def unlink(self, path: str) -> WorkRecord:
        """``unlink(2)``: the name goes; the inode goes with it only when nothing else
        references it.

        ``do_unlinkat`` -> ``vfs_unlink`` -> ``xfs_remove`` drops the link count, then
        ``iput`` of the dentry's inode: with no open file and no mapping that is the last
        reference, and ``iput_final`` -> ``evict`` deletes every DAX entry (trunc=true:
        ``truncate_inode_pages_final`` -> ``dax_delete_mapping_entry`` up to v6.14;
        ``xfs_fs_evict_inode`` -> ``dax_break_layout_final`` -> ``dax_delete_mapping_range``
        from v6.15) before ``xfs_inactive`` frees the blocks. An inode still open or mapped
        (``vma->vm_file`` holds it) stays, an orphan, with its blocks, its entries and its
        mappings, which go on loading and storing (CoW of shared blocks included) until
        the last reference goes (:meth:`munmap`, :meth:`close`, :meth:`unmount`)."""
        wr, w0 = self._wr("unlink")
        ino = self.fs.lookup(path)
        ch = self.fs.unlink(path)
        if ino not in self.fs.inodes:  # no reference left: evicted at the unlink
            self._evict(ino, wr)
        self._account(ch, wr, ino)
        return self._done(wr, w0)

    def _release(self, ino: int, wr: WorkRecord) -> None:
        """Drop one reference on ``ino`` (``fput`` of an fd or of a VMA's file -> ``iput``);
        the last one of an unlinked inode evicts it (DAX entries deleted, trunc=true, as at
        :meth:`unlink`) and ``xfs_inactive`` frees its blocks."""
        ch = self.fs.release(ino)
        if ch is not None:
            self._evict(ino, wr)
            self._account(ch, wr, ino)

    def close(self, ino: int) -> WorkRecord:
        """``close(2)`` of a file :meth:`open` ed with ``hold=True``: its reference goes
        (the last one of an unlinked file evicts it)."""
        wr, w0 = self._wr("close")
        self._release(ino, wr)
        return self._done(wr, w0)

    def unmount(self, order: Sequence[int] | None = None) -> WorkRecord:
        """Unmount: every mapping gone and every open file closed (the last reference of an
        orphan evicts and frees it), then every inode evicted (disassociate trunc=true).

        Parameters
        ----------
        order : sequence of int, optional
            Inode numbers in the order the eviction pass takes them (inodes not named go
            after, in ascending order). Default: ascending inode number, the order of the
            rig's two-file scripts on 6.1. ``generic_shutdown_super()`` -> ``evict_inodes()``
            walks the superblock's inode list and promises no order (it also disposes of
            what it has gathered whenever it must reschedule), so a script whose warnings
            would hang on it evicts its files otherwise (tests/test_eviction_order.py).
        """
        wr, w0 = self._wr("unmount")
        for vid in list(self.vmas):
            wr.warnings += self.munmap(vid).warnings  # an orphan's eviction may warn
        for ino in sorted(self.fs.inodes):
            while ino in self.fs.inodes and self.fs.users(ino):
                self._release(ino, wr)
        first = [ino for ino in dict.fromkeys(order or ()) if ino in self.spaces]
        for ino in first + sorted(set(self.spaces) - set(first)):
            self._evict(ino, wr)
        self.processes.clear()
        return self._done(wr, w0)

    def fsync(self, ino: int, off: int = 0, length: int | None = None) -> WorkRecord:
        """``fsync``/``msync``: ``dax_writeback_mapping_range`` over the range.

        DIRTY entries are tagged TOWRITE, then each TOWRITE entry is written back: marks
        cleared, PTEs write-protected in every VMA (``pfn_mkclean_range``), cache flushed.
        """
        wr, w0 = self._wr("fsync")
        self._writeback(ino, off, length, wr)
        return self._done(wr, w0)

    def _writeback(self, ino: int, off: int, length: int | None, wr: WorkRecord) -> None:
        """``dax_writeback_mapping_range`` over bytes ``[off, off + length)`` of ``ino``
        (``length`` None: the whole file): every DIRTY/TOWRITE entry is written back, its
        marks cleared and its PTEs/PMDs write-protected in every VMA, so the next store
        faults."""
        a = self.spaces.get(ino)
        if a is None or not a.xa.marks:
            return
        xa = a.xa
        if length is None:
            idxs = sorted(xa.marks)
        else:
            first, last = self._blocks(off, length)
            idxs = [i for i in xa.range_indices(first, last) if i in xa.marks]
        if not idxs:
            return
        acct = self.accounting
        if acct:
            wr.locks.append(("xa_lock", a.mid))
        for idx in idxs:
            value = xa.entries[idx]
            if acct:
                wr.write("xarray_node", *xa.walk_keys(idx))
                wr.locks.append(("entry", a.mid, idx))
            xa.clear_mark(idx, MARK_DIRTY | MARK_TOWRITE)
            n = PG_PMD_NR if value & DAX_PMD else 1
            for vma in a.vmas:
                if value & DAX_PMD:
                    p = vma.pmds.get(idx)
                    if p is not None and p[1]:
                        vma.pmds[idx] = (p[0], False)
                        if acct:
                            wr.write("pagetable", self._pt_key(vma, idx, True))
                        wr.tlb_shootdowns += 1
                else:
                    p = vma.ptes.get(idx)
                    if p is not None and p[1]:
                        vma.ptes[idx] = (p[0], False)
                        if acct:
                            wr.write("pagetable", self._pt_key(vma, idx, False))
                        wr.tlb_shootdowns += 1
            if acct and not value & (DAX_ZERO_PAGE | DAX_EMPTY):
                # dax_flush of the entry: cache-line write-backs of the whole entry
                wr.pmem_write.append(((value >> DAX_SHIFT) * PAGE_SIZE, n * PAGE_SIZE))

    # ================================================================= mappings
    def mmap(
        self, pid: int, ino: int, off: int, length: int, *, writable: bool = True, huge: bool = True
    ) -> int:
        """Create a ``MAP_SHARED`` mapping; returns its id. With ``huge`` the virtual address
        is PMD colour-aligned with the file offset (``thp_get_unmapped_area`` for DAX files);
        without it the address is one page off that colour (as a fixed or hinted address can
        be), so ``dax_fault_check_fallback`` sends every fault down the PTE path."""
        if off % PAGE_SIZE or off < 0 or length <= 0:
            raise FsError("EINVAL", f"mmap offset {off} / length {length} invalid")
        pgoff = off // PAGE_SIZE
        npages = -(-length // PAGE_SIZE)
        va = self._next_va + ((pgoff + (0 if huge else 1)) & PG_PMD_COLOUR) * PAGE_SIZE
        pmd_bytes = PG_PMD_NR * PAGE_SIZE
        self._next_va = ((va + npages * PAGE_SIZE) // pmd_bytes + 2) * pmd_bytes
        vid = self._next_vid
        self._next_vid += 1
        self.fs.hold(ino)  # mmap_region: vma->vm_file = get_file(file)
        vma = Vma(vid, pid, ino, pgoff, npages, bool(writable), va)
        self.vmas[vid] = vma
        self._space(ino).vmas.append(vma)
        self.processes.setdefault(pid, []).append(vid)
        return vid

    def munmap(self, vid: int) -> WorkRecord:
        """Remove a mapping (its PTEs/PMDs; the DAX entries stay), dropping its file
        reference (``remove_vma`` -> ``fput``): the last reference of an unlinked file
        evicts it (:meth:`unlink`)."""
        wr = WorkRecord("munmap")
        self._w0 = None
        vma = self.vmas.pop(vid)
        if vma.ptes or vma.pmds:
            if self.accounting:
                for i in vma.ptes:
                    wr.write("pagetable", self._pt_key(vma, i, False))
                for c in vma.pmds:
                    wr.write("pagetable", self._pt_key(vma, c, True))
            self._unmap_folios(vma, wr)
            wr.tlb_shootdowns += 1
        a = self.spaces.get(vma.ino)
        if a is not None:
            a.vmas = [v for v in a.vmas if v.vid != vid]
        lst = self.processes.get(vma.pid)
        if lst is not None:
            lst.remove(vid)
        self._release(vma.ino, wr)
        if self._w0 is not None:  # the eviction changed struct pages: its warnings
            wr.warnings += self.mm.warning_total() - self._w0
            self._w0 = None
        return wr

    # ================================================================= faults
    def fault(self, vid: int, index: int, *, write: bool) -> WorkRecord:
        """One page fault on file page ``index`` through mapping ``vid`` (PMD first, PTE on
        fallback)."""
        wr, w0 = self._wr("write_fault" if write else "read_fault")
        try:
            self._fault(self.vmas[vid], index, write, wr)
        except FsError:
            self._done(wr, w0)  # what the failed fault did (an entry, a WARN) is recorded
            raise
        return self._done(wr, w0)

    def _fault(self, vma: Vma, index: int, write: bool, wr: WorkRecord) -> None:
        if not vma.pgoff <= index < vma.pgoff + vma.npages:
            raise ValueError(f"page {index} outside mapping {vma.vid}")
        if write and not vma.writable:
            raise FsError("EACCES", "SIGSEGV: write to a read-only mapping")
        if index * PAGE_SIZE >= self.fs.size(vma.ino):
            raise FsError("SIGBUS", f"fault on page {index} beyond EOF")
        wr.faults += 1
        self.stats["faults"] += 1
        if not self._fault_pmd(vma, index, write, wr):
            self._fault_pte(vma, index, write, wr)

    def _iomap(self, ino: int, first: int, n: int):
        """Uniform extent starting at ``first``: ``(state, pblock, nblocks, shared)`` with
        physically contiguous blocks of one state and one shared flag (the iomap), at most
        ``n`` blocks (``n`` <= 512 and the range inside one 512-block window)."""
        return self.fs.iomap(ino, first, n)

    def _insert_entry(
        self, a: _Space, index: int, old, new_value: int, write: bool, shared: bool, wr: WorkRecord
    ) -> int:
        """``dax_insert_entry`` under the fault rules (§2.1); returns the entry value in place.

        A PTE entry that replaces a multi-index entry (a real PMD entry, or a PTE entry
        already stored in such a slot) goes into that slot and covers its 512 indices
        (:meth:`DaxXArray.store_in_slot`): the PTE fault's ``xa_state`` has order 0."""
        rules = self.rules
        xa = a.xa
        in_slot = False
        if old is not None:
            old_idx, old_value = old
            in_slot = not new_value & DAX_PMD and (old_value & DAX_PMD or old_idx in xa.wide)
        else:
            old_idx, old_value = index, DAX_EMPTY | (new_value & DAX_PMD)
        old_zero = old_value & DAX_ZERO_PAGE
        flag = holds(rules.flag, write, shared)
        dirty = holds(rules.dirty, write, shared)
        towrite = holds(rules.towrite, write, shared)
        replace_cond = holds(rules.replace, write, shared)
        if replace_cond or (old_zero and not new_value & DAX_ZERO_PAGE):
            if old_value & DAX_PMD:
                self._unmap_index_range(a, old_idx, old_idx + PG_PMD_NR - 1, wr)
            else:  # the faulting index (xas->xa_index), old_idx unless in a PMD's slot
                self._unmap_index_range(a, index, index, wr)
        acct = self.accounting
        if acct:
            wr.locks.append(("xa_lock", a.mid))
        if replace_cond or old_zero or old_value & DAX_EMPTY:
            if old is not None:
                at = xa.wide.get(old_idx, old_idx)
                if not in_slot:
                    xa.erase(old_idx)
                self._entry_pages(a, at, old_value, wr, False, False)
            self._entry_pages(a, index, new_value, wr, True, flag)
            if in_slot:
                xa.store_in_slot(old_idx, index, new_value)
                index = old_idx
            else:
                xa.store(index, new_value)
            self.stats["entries_inserted"] += 1
            if acct:
                leaf = XA_CHUNK_SHIFT if new_value & DAX_PMD else 0
                wr.lines_written.setdefault("xarray_node", []).extend(xa.walk_keys(index, leaf))
            value, idx = new_value, index
        else:
            if acct:
                wr.lines_read.setdefault("xarray_node", []).extend(xa.walk_keys(old_idx))
            value, idx = old_value, old_idx
        if dirty:
            xa.set_mark(idx, MARK_DIRTY)
        if towrite:
            xa.set_mark(idx, MARK_TOWRITE)
        return value

    def _cow_or_alloc(self, a: _Space, vma: Vma, first: int, n: int, write: bool, wr: WorkRecord):
        """Resolve the iomap of ``[first, first+n)`` for a fault; for writes allocate holes
        and CoW shared blocks. Returns ``(kind, pfn, shared)`` with kind ``"zero"``,
        ``"mapped"`` or None (not uniform: PMD fallback)."""
        ino = a.ino
        state, pb, length, shared = self.fs.iomap(ino, first, n)
        if length < n:
            return None, 0, False
        if state != WRITTEN:
            if not write:
                return "zero", ZERO_PFN, False
            ch = self.fs.alloc_blocks(ino, first, n)
            self._account(ch, wr, ino)
            state, pb, length, shared = self.fs.iomap(ino, first, n)
            if state != WRITTEN:
                return None, 0, False
            if not ch.pmem_write and self.accounting:  # XFS_BMAPI_ZERO: zeroed allocation
                wr.pmem_write.append((pb * PAGE_SIZE, length * PAGE_SIZE))
            if length < n:
                return None, 0, False
            return "mapped", pb, False
        if write and shared:
            ch = self.fs.cow_blocks(ino, first, n)
            self._account(ch, wr, ino)
            st2, pb2, len2, sh2 = self.fs.iomap(ino, first, n)
            if not ch.pmem_write and self.accounting:  # dax_iomap_copy_around, page/PMD
                wr.pmem_read.append((pb * PAGE_SIZE, n * PAGE_SIZE))
                wr.pmem_write.append((pb2 * PAGE_SIZE, n * PAGE_SIZE))
                wr.memcpy_bytes += n * PAGE_SIZE
            if len2 < n:
                return None, 0, False
            return "mapped", pb2, True
        return "mapped", pb, shared

    def _fault_pmd(self, vma: Vma, index: int, write: bool, wr: WorkRecord) -> bool:
        """``dax_iomap_pmd_fault``; False means VM_FAULT_FALLBACK.

        ``__handle_mm_fault`` (mm/memory.c, every release) tries the huge fault only while
        the PMD is none (``pmd_none(*vmf.pmd)``): once a PTE table exists in the 2 MiB
        region (a PTE fault made it; zapping the PTEs keeps it) every fault there goes
        straight to ``dax_iomap_pte_fault``, neither tried nor counted as a fallback. While
        it is none the huge fault is tried whatever the mapping's size
        (``hugepage_vma_check()`` in 6.1, ``__thp_vma_allowable_orders()`` in 6.8+: a DAX VMA
        in a page fault is allowed), and ``dax_fault_check_fallback()`` sends a PMD range
        off the mapping's colour or outside the VMA back as ``VM_FAULT_FALLBACK``, traced
        and counted. Each mapping has 2 MiB regions of its own (:meth:`mmap`; the kernel
        rig's agent places its mappings the same way), so no other mapping's table is in
        them.
        """
        if (vma.va(index) // PMD_SIZE) in vma.pte_tables:
            return False  # pmd not none: no huge fault is tried
        c = index & ~PG_PMD_COLOUR
        if ((vma.va_start // PAGE_SIZE) - vma.pgoff) & PG_PMD_COLOUR:
            # dax_fault_check_fallback: colour mismatch (traced as FALLBACK)
            self.stats["pmd_fallbacks"] += 1
            return False
        if c < vma.pgoff or c + PG_PMD_NR > vma.pgoff + vma.npages:
            # dax_fault_check_fallback: the PMD range is outside the VMA (traced as FALLBACK)
            self.stats["pmd_fallbacks"] += 1
            return False
        size = self.fs.size(vma.ino)
        max_pgoff = -(-size // PAGE_SIZE)
        if c >= max_pgoff or (c | PG_PMD_COLOUR) >= max_pgoff:
            # dax_fault_check_fallback: the PMD would reach past EOF (traced as FALLBACK)
            self.stats["pmd_fallbacks"] += 1
            return False
        a = self._space(vma.ino)
        xa = a.xa
        if xa.pte_per_pmd.get(c >> 9):
            self.stats["pmd_fallbacks"] += 1
            return False  # grab_mapping_entry conflict with PTE entries
        old = xa.lookup(c)
        if self.accounting:
            wr.locks.append(("entry", a.mid, c))
            wr.read("xarray_node", *xa.walk_keys(c, XA_CHUNK_SHIFT))
        kind, pfn, shared = self._cow_or_alloc(a, vma, c, PG_PMD_NR, write, wr)
        if kind is None or (kind == "mapped" and pfn & PG_PMD_COLOUR):
            self.stats["pmd_fallbacks"] += 1
            return False  # iomap shorter than 2 MiB / pfn not 2 MiB aligned
        if kind == "zero":
            if old is None or old[1] & DAX_EMPTY:
                self._insert_entry(a, c, old, DAX_ZERO_PAGE | DAX_PMD, False, False, wr)
            elif not old[1] & DAX_ZERO_PAGE:
                # a real entry over a hole (stale): the kernel maps what the entry holds
                pass
            self._install(vma, c, ZERO_PFN, False, True, wr)
        else:
            self._insert_entry(a, c, old, (pfn << DAX_SHIFT) | DAX_PMD, write, shared, wr)
            if self._pmd_folio_refused(pfn, wr):
                self.stats["pmd_sigbus"] += 1
                raise FsError(
                    "SIGBUS",
                    f"PMD fault on page {index}: vmf_insert_folio_pmd() refuses the order-0 "
                    f"folio at pfn {pfn}",
                )
            self._install(vma, c, pfn, write, True, wr)
        self.stats["pmd_faults"] += 1
        return True

    def _pmd_folio_refused(self, pfn: int, wr: WorkRecord) -> bool:
        """``vmf_insert_folio_pmd(vmf, pfn_folio(pfn), write)`` under
        ``rules.pmd_folio_order`` (v6.15+, designs with folios): after ``dax_insert_entry``
        (the entry stays stored and associated) it reads the folio's order and, when it is
        not 9, WARNs (``pmd_folio_order``) and returns ``VM_FAULT_SIGBUS``, which
        ``__handle_mm_fault`` gives to the access: no PMD, no fallback, no retry. True when
        it refused."""
        mm = self.mm
        if not (self.rules.pmd_folio_order and mm.variant.folio):
            return False
        if mm.folio(pfn)[1] == PMD_ORDER:
            return False
        wr.read("struct_page", pfn)  # folio_order(): the head's flags
        if self._w0 is None:
            self._w0 = mm.warning_total()
        mm.count_warning("pmd_folio_order")
        return True

    def _fault_pte(self, vma: Vma, index: int, write: bool, wr: WorkRecord) -> None:
        """``dax_iomap_pte_fault``."""
        a = self._space(vma.ino)
        xa = a.xa
        acct = self.accounting
        old = xa.lookup(index)
        if acct:
            wr.locks.append(("entry", a.mid, index))
            wr.lines_read.setdefault("xarray_node", []).extend(xa.walk_keys(index))
        if old is not None and old[1] & DAX_PMD and old[1] & (DAX_ZERO_PAGE | DAX_EMPTY):
            # grab_mapping_entry: downgrade a zero/empty PMD entry
            self._unmap_index_range(a, old[0], old[0] + PG_PMD_NR - 1, wr)
            if acct:
                wr.locks.append(("xa_lock", a.mid))
            xa.erase(old[0])
            old = None
        self.stats["pte_faults"] += 1
        kind, pfn, shared = self._cow_or_alloc(a, vma, index, 1, write, wr)
        if kind == "zero":
            if old is None:
                self._insert_entry(a, index, None, DAX_ZERO_PAGE, False, False, wr)
            self._install(vma, index, ZERO_PFN, False, False, wr)
            return
        if old is not None and (old[1] & DAX_PMD or old[0] in xa.wide):
            # PTE fault under a real PMD entry (or the PTE entry in its slot): a replacing
            # fault puts its PTE entry in the slot (_insert_entry), else the entry stays
            if holds(self.rules.replace, write, shared):
                self._insert_entry(a, index, old, pfn << DAX_SHIFT, write, shared, wr)
            else:
                self._insert_entry(a, old[0], old, old[1], write, shared, wr)
            self._install(vma, index, pfn, write, False, wr)
            return
        self._insert_entry(a, index, old, pfn << DAX_SHIFT, write, shared, wr)
        self._install(vma, index, pfn, write, False, wr)

    def _install(
        self, vma: Vma, index: int, pfn: int, writable: bool, pmd: bool, wr: WorkRecord
    ) -> None:
        table = vma.pmds if pmd else vma.ptes
        prev = table.get(index)
        table[index] = (pfn, writable)
        if not pmd:
            vma.pte_tables.add(vma.va(index) // PMD_SIZE)
        wr.pages_mapped += 1
        self._folio_refs(wr, pfn, pmd, True, upgrade=prev is not None and prev[0] == pfn)
        if not self.accounting:
            return
        key = self._pt_key
        if pmd:  # a PMD replaces any PTE table under it
            wr.lines_written.setdefault("pagetable", []).append(key(vma, index, True))
        else:
            wr.lines_read.setdefault("pagetable", []).append(key(vma, index, True))
            wr.lines_written.setdefault("pagetable", []).append(key(vma, index, False))

    # ================================================================= loads/stores
    def mread(self, vid: int, off: int, length: int) -> WorkRecord:
        """Loads through mapping ``vid`` at file offset ``off``: fault every unmapped page."""
        wr, w0 = self._wr("mread")
        vma = self.vmas[vid]
        first, last = self._blocks(off, length)
        try:
            for i in range(first, last + 1):
                if vma.lookup(i) is None:
                    self._fault(vma, i, False, wr)
        except FsError:
            self._done(wr, w0)  # the SIGBUS ends the access; its faults' work is recorded
            raise
        if self.accounting:
            self._record_access(vma, off, length, wr, False)
        return self._done(wr, w0)

    def load(self, vid: int, off: int, length: int) -> bytes:
        """The bytes loads through mapping ``vid`` read at file offsets ``[off, off + length)``
        (clipped at EOF, as ``xfs_io mread -v`` prints them), after :meth:`mread` faulted
        the pages in: each page is read from the pfn its PTE or PMD maps. That is the
        file's current block, except under a stale page-table entry (6.0-6.1: write(2)'s CoW
        leaves it on the old block, ``dax_iomap_iter`` invalidating only ``IOMAP_F_NEW``
        ranges), which reads the old block as it is now: the other file's data, or what a
        later owner wrote there once the block was freed and reused. The zero page reads
        zeros; a page not mapped reads the file (what a fault would map)."""
        vma = self.vmas[vid]
        fs = self.fs
        data = fs.pread(vma.ino, off, length)
        if not data:
            return data
        end = off + len(data)
        out = None
        for i in range(off // PAGE_SIZE, (end - 1) // PAGE_SIZE + 1):
            m = vma.lookup(i)
            if m is None:
                continue
            st, pb, _n, _sh = fs.iomap(vma.ino, i, 1)
            cur = pb if st == WRITTEN else ZERO_PFN
            if m[0] == cur:
                continue
            src = bytes(PAGE_SIZE) if m[0] < 0 else fs.block_data(m[0])
            base = i * PAGE_SIZE
            s, e = max(off, base), min(end, base + PAGE_SIZE)
            if out is None:
                out = bytearray(data)
            out[s - off : e - off] = src[s - base : e - base]
        return data if out is None else bytes(out)

    def mwrite(self, vid: int, off: int, length: int, byte: int) -> WorkRecord:
        """Stores through mapping ``vid``: write-fault every page not mapped writable, then
        store in place (``fs.store``)."""
        wr, w0 = self._wr("mwrite")
        vma = self.vmas[vid]
        first, last = self._blocks(off, length)
        try:
            for i in range(first, last + 1):
                m = vma.lookup(i)
                if m is None or not m[1]:
                    self._fault(vma, i, True, wr)
        except FsError:
            self._done(wr, w0)  # the SIGBUS ends the access before its store
            raise
        if length > 0:
            self.fs.store(vma.ino, off, length, byte)
        if self.accounting:
            self._record_access(vma, off, length, wr, True)
        return self._done(wr, w0)

    def _record_access(self, vma: Vma, off: int, length: int, wr: WorkRecord, store: bool) -> None:
        if length <= 0:
            return
        end = off + length
        first, last = off // PAGE_SIZE, (end - 1) // PAGE_SIZE
        acc = wr.pmem_write if store else wr.pmem_read
        run_s = None
        run_len = 0
        ptes = vma.ptes
        for i in range(first, last + 1):
            m = ptes.get(i)
            if m is None:
                m = vma.lookup(i)
            pfn = m[0] if m is not None else ZERO_PFN
            if pfn < 0:
                continue
            base = i * PAGE_SIZE
            s = off if off > base else base
            t = base + PAGE_SIZE
            if end < t:
                t = end
            addr = pfn * PAGE_SIZE + (s - base)
            if run_s is not None and addr == run_s + run_len:
                run_len += t - s
            else:
                if run_s is not None:
                    acc.append((run_s, run_len))
                run_s, run_len = addr, t - s
        if run_s is not None:
            acc.append((run_s, run_len))

    # ================================================================= memory failure
    def memory_failure(
        self,
        vid: int | None,
        off: int,
        length: int,
        poisoner_pid: int | None = None,
        *,
        ino: int | None = None,
    ) -> tuple[MemoryFailureResult, WorkRecord]:
        """``MADV_HWPOISON`` over file range ``[off, off+length)`` of mapping ``vid`` (or, with
        ``vid=None, ino=``, the blocks backing that range of a file: a media error).

        For each page: fault it in if needed (get_user_pages), poison its pfn, find the owners
        by the rmap path (``fs.rmap`` → every ``(file, offset)``, then per in-core owner the
        DAX entry and the processes mapping it) and by the ``page->mapping`` fallback
        (``mm.page_owner``); the path in use (``rmap``) unmaps and signals.
        """
        wr, w0 = self._wr("memory_failure")
        vma = self.vmas[vid] if vid is not None else None
        if vma is None and ino is None:
            raise ValueError("memory_failure needs a mapping id or an inode")
        poisoner = poisoner_pid if poisoner_pid is not None else (vma.pid if vma else -1)
        res = MemoryFailureResult(path="rmap" if self.rmap else "page_mapping")
        first, last = self._blocks(off, length)
        for i in range(first, last + 1):
            if vma is not None:
                m = vma.lookup(i)
                if m is None:
                    self._fault(vma, i, False, wr)
                    m = vma.lookup(i)
                pfn = m[0]
            else:  # poison by file offset (no mapping): the block backing it
                st, pb, _n, _sh = self._iomap(ino, i, 1)
                pfn = pb if st == WRITTEN else ZERO_PFN
            if pfn < 0:
                continue  # zero page / hole: not pmem
            res.pfns.append(pfn)
            self.hwpoisoned.add(pfn)
            owners = [(int(o), int(fb)) for o, fb in self.fs.rmap(pfn)]
            if self.accounting:
                wr.read("rmap", *[(pfn << 8) | k for k in range(max(1, len(owners)))])
            res.rmap_owners[pfn] = owners
            mo = self.mm.page_owner(pfn)
            wr.read("struct_page", pfn)
            fb_owner = []
            if mo >= 1:
                head, _order, _m, hidx = self.mm.folio(pfn)
                fb_owner = [(self._ino_of(mo), hidx + (pfn - head))]
            res.fallback_owners[pfn] = fb_owner
            acting = owners if self.rmap else fb_owner
            if not acting:
                res.errno = "EBUSY"
                continue
            for owner, idx in acting:  # not ``ino``: the file poisoned by offset
                a = self.spaces.get(owner)
                if a is None:
                    continue  # not in core: nothing can be mapped
                if self.accounting:
                    wr.locks.append(("entry", a.mid, idx))
                    wr.read("xarray_node", *a.xa.walk_keys(idx))
                ent = a.xa.lookup(idx)
                if ent is None or ent[1] & (DAX_ZERO_PAGE | DAX_EMPTY):
                    continue
                size_pages = PG_PMD_NR if ent[1] & DAX_PMD else 1
                lo = ent[0] if size_pages > 1 else idx
                pids = sorted({v.pid for v in a.vmas if v.covers(idx)})
                for v in a.vmas:
                    if v.lookup(idx) is not None:
                        res.unmapped.append((v.vid, idx))
                self._unmap_index_range(a, lo, lo + size_pages - 1, wr)
                for p in pids:
                    if p == poisoner:
                        if (p, "BUS_MCEERR_AR") not in res.signalled:
                            res.signalled.append((p, "BUS_MCEERR_AR"))
                        res.sigbus_poisoner = True
                    elif self.early_kill and (p, "BUS_MCEERR_AO") not in res.signalled:
                        res.signalled.append((p, "BUS_MCEERR_AO"))
        self.signals.extend(res.signalled)
        return res, self._done(wr, w0)

    def _ino_of(self, mid: int) -> int:
        for ino, a in self.spaces.items():
            if a.mid == mid:
                return ino
        return int(mid)

    # ================================================================= views
    def entries(self) -> dict[str, np.ndarray]:
        """Every live real DAX entry: int64 arrays ``mapping``, ``index``, ``pfn``,
        ``npages`` (zero and empty entries excluded), sorted by pfn."""
        parts = []
        for a in self.spaces.values():
            if not a.xa.entries:
                continue
            d = a.xa.arrays()
            real = (d["flags"] & (DAX_ZERO_PAGE | DAX_EMPTY)) == 0
            parts.append(
                (
                    np.full(int(real.sum()), a.mid, np.int64),
                    d["index"][real],
                    d["pfn"][real],
                    d["npages"][real],
                )
            )
        if not parts:
            z = np.zeros(0, np.int64)
            return {"mapping": z, "index": z.copy(), "pfn": z.copy(), "npages": z.copy()}
        m, i, p, n = (np.concatenate(x) for x in zip(*parts, strict=True))
        order = np.argsort(p, kind="stable")
        return {"mapping": m[order], "index": i[order], "pfn": p[order], "npages": n[order]}

    def entries_mapping_pfn(self, pfn: int) -> list[tuple[int, int]]:
        """``(mapping, file_index)`` of every live entry mapping ``pfn``."""
        e = self.entries()
        sel = (e["pfn"] <= pfn) & (pfn < e["pfn"] + e["npages"])
        return [
            (int(m), int(i) + int(pfn - p))
            for m, i, p in zip(e["mapping"][sel], e["index"][sel], e["pfn"][sel], strict=True)
        ]

    def xarray(self, ino: int) -> DaxXArray | None:
        """The DAX xarray of ``ino`` (None when the inode is not in core)."""
        a = self.spaces.get(ino)
        return a.xa if a is not None else None

    def summary(self) -> dict:
        """Counters of the run (memmap summary + fsdax stats)."""
        out = dict(self.stats)
        out["generation"] = self.gen
        out["variant"] = self.variant
        out["live_entries"] = sum(len(a.xa) for a in self.spaces.values())
        out["hwpoisoned_pages"] = len(self.hwpoisoned)
        return out
