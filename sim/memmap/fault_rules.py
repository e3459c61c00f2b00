"""The fault-path rules of a design: what ``fs/dax.c`` does around associate, as data.

A design (:class:`~sim.memmap.Variant`) holds one :class:`FaultRules` (``Variant.fault_rules``);
the fsdax layer's reference (:class:`sim.dax.DaxFS`) reads it and its compiled twin reads the
same rules packed into one integer (:meth:`FaultRules.pack`). The kernel generations' rules are
:data:`RULES_5_19`, :data:`RULES_6_0`, :data:`RULES_6_2` and :data:`RULES_6_15`
(kernel-semantics.md §2.1, §2.2, §2.5; real-kernels.md §2):

=========  =======================  ====================  ===========================
gen        flag passed to associate  entry replaced when   DIRTY / TOWRITE
=========  =======================  ====================  ===========================
``5.19``   none                      old zero/empty         write / never
``6.0``    ``cow = write&&shared``   cow or old zero/empty  always (read faults too) / cow
``6.2``    ``shared``                shared or zero/empty   write / write&&shared
``6.15``   ``shared``                shared or zero/empty   write / write&&shared
=========  =======================  ====================  ===========================

Breaking a file's layout (reflink, dedupe, fallocate, truncate) unmaps every mapping of the
file up to 6.14, and also deletes its DAX entries from 6.15 (``break_layout``). From 6.15 a PMD
fault maps a folio, and ``vmf_insert_folio_pmd()`` refuses one not of order 9 with a WARN and
SIGBUS (``pmd_folio_order``).

A rule that depends on the fault is a *condition* on the fault's ``write`` and the iomap's
``IOMAP_F_SHARED``: ``"never"``, ``"cow"`` (``write && shared``), ``"shared"``, ``"write"`` or
``"always"``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = [
    "FaultRules",
    "CONDITIONS",
    "RULES_5_19",
    "RULES_6_0",
    "RULES_6_2",
    "RULES_BY_GENERATION",
    "GENERATIONS",
    "holds",
    "packed_holds",
    "RULE_FLAG",
    "RULE_REPLACE",
    "RULE_DIRTY",
    "RULE_TOWRITE",
    "RULE_INVALIDATE_REMAPPED",
    "RULE_CLEAR_DIRTY_FIRST",
    "RULE_BREAK_LAYOUT",
    "RULE_PMD_FOLIO_ORDER",
    "BREAK_LAYOUTS",
    "RULES_6_15",
]

#: Conditions on a fault, by name; the index is the packed code.
CONDITIONS = ("never", "cow", "shared", "write", "always")

#: Bit offsets of the packed rules (3 bits per condition, 1 per boolean).
RULE_FLAG = 0
RULE_REPLACE = 3
RULE_DIRTY = 6
RULE_TOWRITE = 9
RULE_INVALIDATE_REMAPPED = 12
RULE_CLEAR_DIRTY_FIRST = 13
RULE_BREAK_LAYOUT = 14
RULE_PMD_FOLIO_ORDER = 16

#: What breaking a file's DAX layout does, by name; the index is the packed code.
BREAK_LAYOUTS = ("none", "unmap", "unmap_delete")


def holds(cond: str, write: bool, shared: bool) -> bool:
    """Whether condition ``cond`` holds for a fault (``write``) on an extent (``shared``)."""
    return packed_holds(CONDITIONS.index(cond), write, shared)


def packed_holds(code: int, write: bool, shared: bool) -> bool:
    """:func:`holds` on the condition's code (the compiled twin's form, same arithmetic)."""
    if code == 0:
        return False
    if code == 1:
        return bool(write) and bool(shared)
    if code == 2:
        return bool(shared)
    if code == 3:
        return bool(write)
    return True


@dataclass(frozen=True)
class FaultRules:
    """The per-generation rules of the fsdax fault and remap paths.

    Attributes
    ----------
    generation : str
        Name of the rule set (``"6.2"``); reported as the run's fault paths.
    flag : str
        Condition under which ``dax_insert_entry`` passes the flag to
        ``dax_associate_entry``: ``"never"`` (v4.17-v5.19: no flag argument), ``"cow"``
        (v6.0-v6.1: ``cow = write && IOMAP_F_SHARED``, 6061b69b9a55), ``"shared"`` (v6.2+:
        ``IOMAP_F_SHARED``, c6f0b395b211 "set the shared flag when file extent is shared").
    replace : str
        Condition under which ``dax_insert_entry`` replaces an existing real entry
        (unmap its PTE/PMD, ``dax_disassociate_entry(old, trunc=false)``, associate the new
        pfn; a PTE fault under a real PMD entry then installs a PTE entry in its place). A
        zero or empty entry is replaced whatever the condition. ``"never"`` v4.17-v5.19,
        ``"cow"`` v6.0-v6.1 (e5d6df73302c "replace mmap entry in case of CoW"), ``"shared"``
        v6.2+ (c6f0b395b211).
    dirty : str
        Condition of the DIRTY mark set by ``dax_insert_entry``: ``"write"`` (``write &&
        !sync``) v4.17-v5.19 and v6.2+; ``"always"`` v6.0-v6.1 (``!sync``: read faults
        dirty their entry too, fixed by c6f0b395b211).
    towrite : str
        Condition of the TOWRITE mark set by ``dax_insert_entry``: ``"never"`` v4.17-v5.19,
        ``"cow"`` v6.0+ (e5d6df73302c; ``write && shared`` in v6.2+).
    invalidate_remapped : bool
        ``dax_iomap_iter`` (write(2) through ``dax_iomap_rw``) / ``dax_zero_iter`` /
        ``dax_unshare_iter`` invalidate the entries over blocks the filesystem CoW'd
        (``invalidate_inode_pages2_range``: each entry first, trunc=false, DIRTY/TOWRITE
        entries skipped, then ``unmap_mapping_pages`` over the range): v6.2+ (f80e1668888f
        "fsdax: invalidate pages when CoW" added ``|| cow`` to the ``IOMAP_F_NEW`` test of
        ``dax_iomap_iter``). Without it (v6.0-v6.1: ``dax_iomap_iter`` invalidates only
        ``IOMAP_F_NEW`` ranges) nothing is invalidated: the entry *and every PTE/PMD* stay
        on the old pfn, so loads through a mapping read the old block (the 6.0 data
        corruption), whoever owns that block later; a store faults and ``insert_pfn``
        refuses the new pfn (see :class:`sim.dax.DaxFS`).
    clear_dirty_first : bool
        ``__dax_clear_dirty_range`` runs before that invalidation (and before the one of
        newly allocated ranges), so dirty entries go too: "fsdax: force clear dirty mark if
        CoW" (mm hotfixes, Mar 2023; part of the model's 6.2 paths). Entries over newly
        allocated ranges (IOMAP_F_NEW) are invalidated in every generation; without this
        rule their dirty zero entries survive.
    break_layout : str
        What XFS does to a DAX file's layout before reflink and dedupe (both files:
        ``xfs_ilock2_io_mmap`` -> ``xfs_mmaplock_two_inodes_and_break_dax_layout``), fallocate
        (every mode: ``xfs_file_fallocate``) and truncate (``xfs_vn_setattr``), through
        ``xfs_break_layouts(BREAK_UNMAP)`` -> ``xfs_break_dax_layouts``: ``"unmap"`` v4.17-v6.14
        (``dax_layout_busy_page_range`` -> ``unmap_mapping_pages`` over the whole file: every
        PTE and PMD goes, the DAX entries stay; 5fac7408d828, 69eb5fa10eb2), ``"unmap_delete"``
        v6.15+ (``dax_break_layout_inode`` -> ``dax_break_layout``, which also calls
        ``dax_delete_mapping_range``: the entries are deleted with trunc=true, disassociating
        their pages; Popple's ZONE_DEVICE refcount series). ``"none"``: no layout breaking.
        Observed on 6.1, 6.12 and 7.3 (real-kernels.md §2).
    pmd_folio_order : bool
        A PMD fault maps the folio of its pfn and refuses one not of order 9: v6.15+
        ``dax_fault_iter`` calls ``vmf_insert_folio_pmd(vmf, pfn_folio(pfn), write)``
        (Popple's "fs/dax: properly refcount fs dax pages", 38607c62b34b; up to v6.14
        ``vmf_insert_pfn_pmd``, which maps a pfn and reads no struct page), and
        ``vmf_insert_folio_pmd`` (mm/huge_memory.c, v6.15, v6.18, 7.3) starts with
        ``if (WARN_ON_ONCE(folio_order(folio) != PMD_ORDER)) return VM_FAULT_SIGBUS``. It
        runs after ``dax_insert_entry``: the PMD entry is in the xarray and associated (a
        shared order-0 folio's share raised, its order unchanged), no PMD is installed, and
        ``__handle_mm_fault`` returns the SIGBUS to the access (no fallback, no retry). A
        folio is order 0 there when ``dax_associate_entry`` took the shared branch, which
        skips ``dax_folio_init``: a clone's PTE fault owned the first page, or an order-0
        owner's put left a stale share (the phantom). Applies to designs with folios only.
    """

    generation: str
    flag: str
    replace: str
    dirty: str
    towrite: str
    invalidate_remapped: bool
    clear_dirty_first: bool
    break_layout: str = "unmap"
    pmd_folio_order: bool = False

    def __post_init__(self) -> None:
        for name in ("flag", "replace", "dirty", "towrite"):
            v = getattr(self, name)
            if v not in CONDITIONS:
                raise ValueError(
                    f"FaultRules.{name}: {v!r} is not a condition ({', '.join(CONDITIONS)})"
                )
        if self.break_layout not in BREAK_LAYOUTS:
            raise ValueError(
                f"FaultRules.break_layout: {self.break_layout!r} is not one of "
                f"{', '.join(BREAK_LAYOUTS)}"
            )

    def pack(self) -> int:
        """The rules as one int64 (the compiled twin's form): a 3-bit condition code at
        :data:`RULE_FLAG`, :data:`RULE_REPLACE`, :data:`RULE_DIRTY`, :data:`RULE_TOWRITE`,
        one bit at :data:`RULE_INVALIDATE_REMAPPED` and :data:`RULE_CLEAR_DIRTY_FIRST`, the
        2-bit :data:`BREAK_LAYOUTS` code at :data:`RULE_BREAK_LAYOUT`, one bit at
        :data:`RULE_PMD_FOLIO_ORDER`."""
        c = CONDITIONS.index
        return (
            (c(self.flag) << RULE_FLAG)
            | (c(self.replace) << RULE_REPLACE)
            | (c(self.dirty) << RULE_DIRTY)
            | (c(self.towrite) << RULE_TOWRITE)
            | (int(self.invalidate_remapped) << RULE_INVALIDATE_REMAPPED)
            | (int(self.clear_dirty_first) << RULE_CLEAR_DIRTY_FIRST)
            | (BREAK_LAYOUTS.index(self.break_layout) << RULE_BREAK_LAYOUT)
            | (int(self.pmd_folio_order) << RULE_PMD_FOLIO_ORDER)
        )


#: v4.17-v5.19: one owner per page, no CoW paths in fsdax.
RULES_5_19 = FaultRules(
    generation="5.19",
    flag="never",
    replace="never",
    dirty="write",
    towrite="never",
    invalidate_remapped=False,
    clear_dirty_first=False,
    break_layout="unmap",
)
#: v6.0-v6.1: the seed series (6061b69b9a55, e5d6df73302c).
RULES_6_0 = FaultRules(
    generation="6.0",
    flag="cow",
    replace="cow",
    dirty="always",
    towrite="cow",
    invalidate_remapped=False,
    clear_dirty_first=False,
    break_layout="unmap",
)
#: v6.2-v6.14: the fix series (c6f0b395b211, f80e1668888f) and the Mar 2023 dirty-clearing fix.
RULES_6_2 = FaultRules(
    generation="6.2",
    flag="shared",
    replace="shared",
    dirty="write",
    towrite="cow",
    invalidate_remapped=True,
    clear_dirty_first=True,
    break_layout="unmap",
)
#: v6.15+: the 6.2 paths, breaking a layout deletes the file's DAX entries
#: (``dax_break_layout`` -> ``dax_delete_mapping_range``), and a PMD fault maps a folio,
#: refusing one not of order 9 (``vmf_insert_folio_pmd``).
RULES_6_15 = dataclasses.replace(
    RULES_6_2, generation="6.15", break_layout="unmap_delete", pmd_folio_order=True
)
#: The kernel generations' rules by name.
RULES_BY_GENERATION = {r.generation: r for r in (RULES_5_19, RULES_6_0, RULES_6_2, RULES_6_15)}
#: Names of the kernel generations of the fault paths.
GENERATIONS = tuple(RULES_BY_GENERATION)
