"""The DAX xarray of one address_space, modelled on the kernel's (kernel-semantics.md §3).

Entries are XArray *value* entries holding ``pfn << DAX_SHIFT | flags`` (flags LOCKED, PMD,
ZERO_PAGE, EMPTY); the stored word is ``xa_mk_value(value) = value << 1 | 1``. The tree has
nodes of 64 slots (``XA_CHUNK_SHIFT = 6``); a PMD (order 9) entry is a multi-index entry: one
canonical slot plus 7 sibling slots in a node of shift 6, so it needs a node even at index 0.
A lone order-0 entry at index 0 lives in ``xa_head`` without a node.

The model keeps entries in a dict by canonical index (O(1) per operation) and, per root
shift, the number of entries whose last index needs it (the root shift follows the largest
index: ``xas_shrink`` keeps the tree at the minimal height after removals, see
:meth:`DaxXArray.height`). The node set -- the node of shift ``s`` covering index ``i`` has
prefix ``i >> (s + 6)`` -- is derived from the entries when asked (:meth:`node_count`).
"""

from __future__ import annotations

import numpy as np

from sim.constants import (  # noqa: F401 - re-exported
    DAX_EMPTY,
    DAX_LOCKED,
    DAX_PMD,
    DAX_SHIFT,
    DAX_ZERO_PAGE,
    PMD_NR_PAGES,
    PMD_ORDER,
)

__all__ = [
    "DAX_SHIFT",
    "DAX_LOCKED",
    "DAX_PMD",
    "DAX_ZERO_PAGE",
    "DAX_EMPTY",
    "PMD_ORDER",
    "PG_PMD_NR",
    "PG_PMD_COLOUR",
    "XA_CHUNK_SHIFT",
    "XA_CHUNK_SIZE",
    "MARK_DIRTY",
    "MARK_TOWRITE",
    "dax_make_entry",
    "dax_to_pfn",
    "dax_entry_order",
    "dax_entry_npages",
    "dax_is_real",
    "xa_mk_value",
    "xa_to_value",
    "xa_is_value",
    "height_for_index",
    "DaxXArray",
]

PG_PMD_NR = PMD_NR_PAGES
PG_PMD_COLOUR = PG_PMD_NR - 1
XA_CHUNK_SHIFT = 6
XA_CHUNK_SIZE = 1 << XA_CHUNK_SHIFT
#: Mark bits kept per entry (PAGECACHE_TAG_DIRTY, PAGECACHE_TAG_TOWRITE).
MARK_DIRTY = 1
MARK_TOWRITE = 2
#: Node levels tracked: shifts 0, 6, ..., 36 (file page indices below 2**42).
_MAX_SHIFT = 36
_SHIFTS = tuple(range(0, _MAX_SHIFT + 1, XA_CHUNK_SHIFT))
#: (level, shift, prefix shift) per node level, from the leaves up
_LEVELS = tuple((k, s, s + XA_CHUNK_SHIFT) for k, s in enumerate(_SHIFTS))


def dax_make_entry(pfn: int, flags: int = 0) -> int:
    """DAX entry value ``pfn << 4 | flags`` (before ``xa_mk_value``)."""
    return (int(pfn) << DAX_SHIFT) | int(flags)


def dax_to_pfn(value: int) -> int:
    """The pfn of a DAX entry value."""
    return int(value) >> DAX_SHIFT


def dax_entry_order(value: int) -> int:
    """0 for a PTE entry, 9 for a PMD entry."""
    return PMD_ORDER if value & DAX_PMD else 0


def dax_entry_npages(value: int) -> int:
    """Pages covered by the entry in the index space (1 or 512)."""
    return PG_PMD_NR if value & DAX_PMD else 1


def dax_is_real(value: int) -> bool:
    """True for an entry that carries a block's pfn (neither zero-page nor empty)."""
    return not (value & (DAX_ZERO_PAGE | DAX_EMPTY))


def xa_mk_value(v: int) -> int:
    """The stored word of a value entry: ``v << 1 | 1``."""
    return (int(v) << 1) | 1


def xa_to_value(entry: int) -> int:
    """Inverse of :func:`xa_mk_value`."""
    return int(entry) >> 1


def xa_is_value(entry: int) -> bool:
    """Bottom bit 1 = value entry (00 pointer, 10 internal)."""
    return bool(int(entry) & 1)


def _shift_for(last_index: int) -> int:
    """Smallest root shift whose tree covers ``last_index``."""
    b = int(last_index).bit_length()
    return 0 if b <= XA_CHUNK_SHIFT else XA_CHUNK_SHIFT * (-(-b // XA_CHUNK_SHIFT) - 1)


def _level_for(last_index: int) -> int:
    """``_shift_for(last_index) // XA_CHUNK_SHIFT`` (for int ``last_index >= 0``)."""
    b = int(last_index).bit_length()
    return (b - 1) // XA_CHUNK_SHIFT if b > XA_CHUNK_SHIFT else 0


def height_for_index(max_index: int, *, multi_index: bool = False) -> int:
    """Node levels on the path from the root to an order-0 (or, with ``multi_index``, only
    order-9) entry of a tree whose largest index is ``max_index``.

    A lone order-0 entry at index 0 needs no node (``xa_head``): height 0. Indices 1..63 need
    one node (shift 0), up to 4095 two, up to 262143 three. A multi-index PMD entry lives in a
    node of shift 6, so a tree holding only PMD entries below index 4096 has one node level,
    even for a PMD entry at index 0.
    """
    if max_index < 0:
        return 0
    if max_index == 0 and not multi_index:
        return 0
    root = _shift_for(max_index)
    if multi_index:
        root = max(root, XA_CHUNK_SHIFT)
        return (root - XA_CHUNK_SHIFT) // XA_CHUNK_SHIFT + 1
    return root // XA_CHUNK_SHIFT + 1


class DaxXArray:
    """DAX entries of one address_space.

    Parameters
    ----------
    mapping_id : int
        The address_space id (>= 1); used to build stable node line keys.
    """

    __slots__ = (
        "mapping_id",
        "entries",
        "marks",
        "_level_refs",
        "_npmd",
        "nrpages",
        "pte_per_pmd",
        "wide",
        "_root",
        "listener",
    )

    def __init__(self, mapping_id: int):
        self.mapping_id = int(mapping_id)
        #: canonical index -> DAX value (unlocked; the lock bit is modelled as a lock event)
        self.entries: dict[int, int] = {}
        #: canonical index -> mark bits
        self.marks: dict[int, int] = {}
        #: entries per root level (shift // 6) their last index needs, non-zero counts only
        #: (the root level is the highest key)
        self._level_refs: dict[int, int] = {}
        self._npmd = 0
        self.nrpages = 0
        #: order-0 entries per 512-index block (a PMD fault conflicts with any of them)
        self.pte_per_pmd: dict[int, int] = {}
        #: PMD-aligned canonical index -> file page of an order-0 entry stored in the slot of
        #: a multi-index (order 9) entry it replaced (:meth:`store_in_slot`): it covers the
        #: 512 indices and counts 512 in ``nrpages`` until its removal takes 1 away
        self.wide: dict[int, int] = {}
        #: cached root_shift() (None: recompute; reset by store and erase)
        self._root: int | None = None
        #: Called as ``listener(mapping_id, index, old, new)`` after every entry change
        #: (``old`` None: stored; ``new`` None: erased); None: no listener. ``index`` is the
        #: file page the entry is associated at, which :meth:`arrays` reports: the canonical
        #: index, or for an entry in a multi-index slot (:attr:`wide`) its own page.
        self.listener = None

    # ------------------------------------------------------------------ shape
    def __len__(self) -> int:
        return len(self.entries)

    def max_index(self) -> int:
        """Largest index covered by any entry (-1 when empty); O(entries)."""
        if not self.entries:
            return -1
        wide = self.wide
        return max(
            i + (PG_PMD_NR if i in wide else dax_entry_npages(v)) - 1
            for i, v in self.entries.items()
        )

    def root_shift(self) -> int:
        """Shift of the root node (-1 when the tree has no node: empty, or a lone order-0
        entry at index 0 held in ``xa_head``)."""
        r = self._root
        if r is None:
            r = self._root = self._root_shift()
        return r

    def _root_shift(self) -> int:
        n = len(self.entries)
        if n == 0:
            return -1
        if n == 1 and self._npmd == 0 and 0 in self.entries:
            return -1
        root = max(self._level_refs) * XA_CHUNK_SHIFT
        if self._npmd or self.wide:
            root = max(root, XA_CHUNK_SHIFT)
        return root

    def height(self) -> int:
        """Node levels on the deepest root-to-leaf path (0: no node)."""
        root = self.root_shift()
        if root < 0:
            return 0
        leaf = 0 if len(self.entries) > self._npmd + len(self.wide) else XA_CHUNK_SHIFT
        return (root - leaf) // XA_CHUNK_SHIFT + 1

    def node_count(self) -> int:
        """Number of ``xa_node`` s allocated (O(entries)): per level up to the root, the
        distinct node prefixes of the entries (a PMD entry starts at the shift-6 level)."""
        root = self.root_shift()
        if root < 0:
            return 0
        total = 0
        for k, _s, sh in _LEVELS[: root // XA_CHUNK_SHIFT + 1]:
            total += len(
                {
                    i >> sh
                    for i, v in self.entries.items()
                    if k or not (v & DAX_PMD or i in self.wide)
                }
            )
        return total

    def node_key(self, shift: int, prefix: int) -> int:
        """Stable cache-line key of one node of this address_space."""
        level = shift // XA_CHUNK_SHIFT
        return (self.mapping_id << 40) | (level << 36) | (prefix & ((1 << 36) - 1))

    def walk_keys(self, index: int, leaf_shift: int = 0) -> list[int]:
        """Node line keys visited by a walk from the root to ``index``'s leaf node."""
        s = self._root
        if s is None:
            s = self.root_shift()
        if s < 0 or s < leaf_shift:
            return []
        out = []
        base = self.mapping_id << 40
        while s >= leaf_shift and s >= 0:
            out.append(
                base
                | ((s // XA_CHUNK_SHIFT) << 36)
                | ((index >> (s + XA_CHUNK_SHIFT)) & ((1 << 36) - 1))
            )
            s -= XA_CHUNK_SHIFT
        return out

    # ------------------------------------------------------------------ access
    def lookup(self, index: int) -> tuple[int, int] | None:
        """``(canonical_index, value)`` of the entry covering ``index``, or None."""
        v = self.entries.get(index)
        if v is not None:
            return index, v
        c = index & ~PG_PMD_COLOUR
        v = self.entries.get(c)
        if v is not None and (v & DAX_PMD or c in self.wide):
            return c, v
        return None

    def store_in_slot(self, canonical: int, index: int, value: int) -> None:
        """Store the order-0 ``value`` of file page ``index`` in the slot of the multi-index
        entry at ``canonical`` (a PMD entry, or an order-0 entry already stored there).

        ``dax_insert_entry`` (fs/dax.c; replacing a real entry: v6.0-6.1 on a write fault to
        a shared extent, ``dax_fault_is_cow()``, v6.2+ on any fault to one, ``IOMAP_F_SHARED``;
        read in 6.1.0-57's, 6.12.118's and 7.3.4's sources, the BUG seen on 6.12.118, 6.18.15
        and 7.3.4) locks the new entry with
        the fault's ``xa_state``, which for a PTE fault has order 0 (``XA_STATE(xas,
        &mapping->i_pages, vmf->pgoff)`` in ``dax_iomap_pte_fault``): ``xas_store`` writes
        only the canonical slot, and the 7 sibling slots keep pointing at it, so the order-0
        entry covers the whole 512-index range, and the next PTE fault anywhere in it finds
        (and replaces) it. ``mapping->nrpages`` is not touched (``grab_mapping_entry``
        counted 512 for the PMD entry), and the entry's removal
        (``dax_delete_mapping_range``, ``__dax_invalidate_entry``) takes away
        ``1 << dax_entry_order(entry)`` = 1: 511 stay counted.
        """
        c = canonical & ~PG_PMD_COLOUR
        kept = self.nrpages
        if c in self.entries:
            self.erase(c)
        self.wide[c] = int(index)  # before the store: its listener call and node level
        self.store(c, value & ~DAX_PMD)
        self.nrpages = kept

    def store(self, index: int, value: int) -> None:
        """Install ``value`` at canonical ``index`` (replacing what is there)."""
        if value & DAX_PMD:
            index &= ~PG_PMD_COLOUR
        self._root = None
        entries = self.entries
        if index in entries:
            self.erase(index)
        entries[index] = value
        at = self.wide.get(index) if self.wide else None  # set by store_in_slot
        if self.listener is not None:
            # the file page the entry is associated at (its slot's index for a wide entry)
            self.listener(self.mapping_id, index if at is None else at, None, value)
        if value & DAX_PMD:
            n = span = PG_PMD_NR
            self._npmd += 1
        else:
            n = 1
            span = 1 if at is None else PG_PMD_NR  # a wide entry sits in a shift-6 node
            b = index >> PMD_ORDER
            ppp = self.pte_per_pmd
            ppp[b] = ppp.get(b, 0) + 1
        self.nrpages += n
        lv = self._level_refs
        k = _level_for(index + span - 1)
        lv[k] = lv.get(k, 0) + 1

    def erase(self, index: int) -> int | None:
        """Remove the entry at canonical ``index``; return its value (None if absent)."""
        value = self.entries.pop(index, None)
        if value is None:
            return None
        at = self.wide.pop(index, None) if self.wide else None
        if self.listener is not None:
            # the file page the entry is associated at (its slot's index for a wide entry)
            self.listener(self.mapping_id, index if at is None else at, value, None)
        self._root = None
        if self.marks:
            self.marks.pop(index, None)
        if value & DAX_PMD:
            n = span = PG_PMD_NR
            self._npmd -= 1
        else:
            n = 1
            span = 1 if at is None else PG_PMD_NR
            b = index >> PMD_ORDER
            ppp = self.pte_per_pmd
            c = ppp[b] - 1
            if c:
                ppp[b] = c
            else:
                del ppp[b]
        self.nrpages -= n
        lv = self._level_refs
        k = _level_for(index + span - 1)
        c = lv[k] - 1
        if c:
            lv[k] = c
        else:
            del lv[k]
        return value

    def set_mark(self, index: int, mark: int) -> None:
        """Set mark bits on the entry at canonical ``index``."""
        self.marks[index] = self.marks.get(index, 0) | mark

    def clear_mark(self, index: int, mark: int) -> None:
        """Clear mark bits on the entry at canonical ``index``."""
        m = self.marks.get(index, 0) & ~mark
        if m:
            self.marks[index] = m
        else:
            self.marks.pop(index, None)

    def get_mark(self, index: int) -> int:
        """Mark bits of the entry at canonical ``index``."""
        return self.marks.get(index, 0)

    def range_indices(self, first: int, last: int) -> list[int]:
        """Canonical indices of entries intersecting page range ``[first, last]`` (sorted).

        Cost is ``O(min(range, entries))``.
        """
        if last < first or not self.entries:
            return []
        span = last - first + 1
        if span <= 2 * len(self.entries):
            out = []
            get = self.entries.get
            c = first & ~PG_PMD_COLOUR
            if c < first:
                v = get(c)
                if v is not None and (v & DAX_PMD or c in self.wide):
                    out.append(c)
            for i in range(first, last + 1):
                if get(i) is not None:
                    out.append(i)
            return out
        out = []
        for i, v in self.entries.items():
            end = i + (PG_PMD_NR if v & DAX_PMD or i in self.wide else 1) - 1
            if end >= first and i <= last:
                out.append(i)
        out.sort()
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """Entries as int64 arrays: ``index``, ``pfn``, ``npages``, ``flags``, ``marks``."""
        n = len(self.entries)
        wide = self.wide
        idx = np.fromiter((wide.get(i, i) for i in self.entries), dtype=np.int64, count=n)
        val = np.fromiter(self.entries.values(), dtype=np.int64, count=n)
        marks = np.fromiter((self.marks.get(i, 0) for i in self.entries), dtype=np.int64, count=n)
        return {
            "index": idx,
            "pfn": val >> DAX_SHIFT,
            "npages": np.where(val & DAX_PMD, PG_PMD_NR, 1).astype(np.int64),
            "flags": val & ((1 << DAX_SHIFT) - 1),
            "marks": marks,
        }
