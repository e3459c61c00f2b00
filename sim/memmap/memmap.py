"""The struct-page metadata of a pmem device: :class:`MemMap`."""

from __future__ import annotations

import mmap
import sys

import numpy as np

from sim.constants import DEFAULT_DESIGN
from sim.errors import InputError
from sim.jit import njit
from sim.memmap import scan as _scan
from sim.memmap.kernels import GAUGED_KERNELS, hist_top
from sim.memmap.layout import (
    COUNTERS,
    G_PHANTOM,
    H_BASE,
    H_OVERFLOW,
    N_STATS,
    OP_ASSOCIATE,
    OP_DISASSOCIATE,
    PHANTOM_TAG,
    PMD_NPAGES,
    PMD_ORDER,
    SITES,
)
from sim.memmap.reference import PageState
from sim.memmap.variants import Variant, get_variant

__all__ = ["MemMap", "check_batch", "find_bad_row"]

_I64 = np.int64

#: Per-page arrays of at least this many bytes are mapped lazily (anonymous, MAP_NORESERVE):
#: the untouched struct pages of a huge device cost address space, not memory.
LAZY_BYTES = 64 << 20
#: The most address space the struct-page arrays of one MemMap may take (half of x86-64's
#: 128 TiB user space): 16 bytes per page, so 2**42 pages (a 16 PiB device).
MAX_ARRAY_BYTES = 1 << 46
_MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000 if sys.platform == "linux" else 0)


def _gib(nbytes: int) -> str:
    for unit, shift in (("PiB", 50), ("TiB", 40), ("GiB", 30), ("MiB", 20)):
        if nbytes >= 1 << shift:
            return f"{nbytes / (1 << shift):,.1f} {unit}"
    return f"{nbytes:,} bytes"


def memmap_bytes(npages: int) -> int:
    """Address space the struct-page arrays of ``npages`` pages take (mapping, index, order)."""
    return 16 * int(npages) + max(1, -(-int(npages) // PMD_NPAGES))


def lazy_zeros(n: int, dtype) -> np.ndarray:
    """``np.zeros(n, dtype)`` whose memory is committed only as it is written.

    Small arrays are plain ``np.zeros``; from :data:`LAZY_BYTES` on, an anonymous private
    mapping with ``MAP_NORESERVE``, so that the kernel's overcommit heuristic does not refuse
    a mapping larger than the machine's memory (pages never written cost nothing).
    """
    dt = np.dtype(dtype)
    nbytes = int(n) * dt.itemsize
    if nbytes < LAZY_BYTES or not _MAP_NORESERVE:
        return np.zeros(int(n), dtype=dt)
    buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE)
    return np.frombuffer(buf, dtype=dt)


def check_batch(op, pfn, npages, mapping, index, flag, device_npages: int):
    """Validate a batch of operations, vectorised.

    Parameters
    ----------
    op, pfn, npages, mapping, index, flag : ndarray of shape (N,), int64
        The batch (see :meth:`MemMap.apply`).
    device_npages : int
        Pages of the device.

    Returns
    -------
    None or tuple of (int, str, str)
        ``(row, field, message)`` of the first bad row, or None if the batch is valid.
    """
    n = op.shape[0]
    checks = (
        (
            "op",
            (op != OP_ASSOCIATE) & (op != OP_DISASSOCIATE),
            lambda r: f"expected associate or disassociate, got {op[r]}",
        ),
        ("pfn", pfn < 0, lambda r: f"expected >= 0, got {pfn[r]}"),
        (
            "npages",
            (npages != 1) & (npages != PMD_NPAGES),
            lambda r: f"expected 1 or {PMD_NPAGES}, got {npages[r]}",
        ),
        (
            "pfn",
            (npages == PMD_NPAGES) & (pfn % PMD_NPAGES != 0),
            lambda r: (
                f"a {PMD_NPAGES}-page entry must start at a multiple of {PMD_NPAGES}, got {pfn[r]}"
            ),
        ),
        (
            "pfn",
            pfn > device_npages - npages,
            lambda r: (
                f"entry [{pfn[r]}, {pfn[r] + npages[r]}) is beyond the device "
                f"({device_npages} pages)"
            ),
        ),
        ("mapping", mapping < 1, lambda r: f"expected an address_space id >= 1, got {mapping[r]}"),
        ("index", index < 0, lambda r: f"expected >= 0, got {index[r]}"),
        ("flag", (flag != 0) & (flag != 1), lambda r: f"expected 0 or 1, got {flag[r]}"),
    )
    first = n
    found = None
    for field, mask, msg in checks:
        rows = np.flatnonzero(mask[:first])
        if rows.size and rows[0] < first:
            first = int(rows[0])
            found = (first, field, msg(first))
    return found


@njit(cache=True)
def _first_bad_row(op, pfn, npages, mapping, index, flag, device_npages):
    """Compiled scan for :func:`check_batch`: the first invalid row, or -1."""
    for k in range(op.shape[0]):
        n = npages[k]
        p = pfn[k]
        if (
            (op[k] != 0 and op[k] != 1)
            or (n != 1 and n != 512)
            or p < 0
            or p > device_npages - n
            or (n == 512 and p % 512 != 0)
            or mapping[k] < 1
            or index[k] < 0
            or (flag[k] != 0 and flag[k] != 1)
        ):
            return k
    return -1


def find_bad_row(op, pfn, npages, mapping, index, flag, device_npages: int):
    """Like :func:`check_batch` but with a compiled scan; the message is built only on error."""
    row = _first_bad_row(op, pfn, npages, mapping, index, flag, device_npages)
    if row < 0:
        return None
    cols = [a[row : row + 1] for a in (op, pfn, npages, mapping, index, flag)]
    _, field, msg = check_batch(*cols, device_npages)
    return int(row), field, msg


class MemMap:
    """One struct page per 4 KiB pmem page, under one design variant.

    Parameters
    ----------
    npages : int
        Pages of the device (a 1 TiB device is 268,435,456 pages).
    variant : str or Variant, default ``DEFAULT_DESIGN`` (page-share)
        Name, alias, ``module:Class`` or :class:`~sim.memmap.Variant`.

    Attributes
    ----------
    mapping, index : ndarray of shape (npages,), int64
        The raw words (16 bytes per page).  ``mapping`` is 0 (NULL), -1 (the flag sentinel)
        or an address_space id; the folio kernels also store ``-2``, an internal tag for
        "NULL with a stale share word from an order-0 owner put", which every exported view
        shows as 0.  For folio designs the state of an order-9 folio is in its head page and
        its 511 tail pages read (0, 0).
    variant : Variant

    Notes
    -----
    Page refcounts and pins are not modelled, so the ``trunc && refcount > 1`` WARN of
    ``dax_disassociate_entry`` cannot fire; ``trunc`` therefore changes nothing.  Warnings are
    counted raw per call site (per page as the <= v6.14 per-pfn loop evaluates them, per folio
    in the folio designs); the latch of ``WARN_ON_ONCE`` is "raw count > 0" in this memmap (one
    boot).

    ``residue_pages()``, ``phantom_pages()``, ``share_histogram()`` and ``share_degree_max()``
    are O(1) reads of gauges that the built-in kernels keep up to date at every state
    transition (see :mod:`sim.memmap.layout`); only a share degree of
    :data:`~sim.memmap.layout.HIST_BINS` or more makes the histogram and its maximum fall
    back to a scan.  A user design without a built-in kernel (the per-page reference path, or
    its own ``batch_kernel``) cannot be trusted to keep them (its code writes the words
    directly), so for it they are computed by scanning (:mod:`sim.memmap.scan`); its phantom
    count is the reference's ``phantoms`` set.  :meth:`scan_stats` always scans (the check).
    """

    def __init__(self, npages: int, variant: str | Variant = DEFAULT_DESIGN):
        npages = int(npages)
        if npages < 1:
            raise ValueError(f"npages must be >= 1, got {npages}")
        self.variant: Variant = get_variant(variant)
        self.npages = npages
        need = memmap_bytes(npages)
        if need > MAX_ARRAY_BYTES:
            raise InputError(
                f"{npages:,} pages need {_gib(need)} of struct-page arrays (16 bytes per "
                f"page, mapped lazily); the limit is {_gib(MAX_ARRAY_BYTES)} of address space, "
                f"{MAX_ARRAY_BYTES // 16:,} pages ({_gib(MAX_ARRAY_BYTES // 16 * 4096)} device)"
            )
        try:
            self.mapping = lazy_zeros(npages, _I64)
            self.index = lazy_zeros(npages, _I64)
            self._order = lazy_zeros(max(1, -(-npages // PMD_NPAGES)), np.int8)
        except (OSError, MemoryError) as exc:
            raise InputError(
                f"{npages:,} pages need {_gib(need)} of struct-page arrays (16 bytes per "
                f"page, mapped lazily) and this machine refused the mapping "
                f"({getattr(exc, 'strerror', None) or exc})"
            ) from None
        self._stats = np.zeros(N_STATS, dtype=_I64)
        self._batch = self.variant.batch_kernel
        # the built-in kernels keep the gauges (residue, phantoms, histogram) in _stats
        self._gauged = self._batch is not None and self._batch in GAUGED_KERNELS
        self._op = self._pick_op_kernel()
        self._one = np.zeros((6, 1), dtype=_I64)  # op, pfn, npages, mapping, index, flag
        self._one_rows = tuple(self._one[r] for r in range(6))
        # _stats positions of every warning site (for warning_total): the design's own and
        # those the fsdax layer counts whatever the design lists (count_warning)
        self._warn_idx = tuple(range(len(COUNTERS), len(COUNTERS) + len(SITES)))
        self._ref: PageState | None = None
        if self._batch is None:
            self._ref = PageState(npages, mapping=self.mapping, index=self.index, order=self._order)

    def _pick_op_kernel(self):
        """The single-operation kernel to use, or None (one-row batches / the reference).

        A built-in batch kernel only pairs with its own single-op kernel, and a user batch
        kernel never with a built-in one (a subclass that replaces one but inherits the other
        would otherwise run two different designs).
        """
        op = getattr(self.variant, "op_kernel", None)
        if self._batch is None or op is None:
            return None
        if self._gauged:
            return op if op is GAUGED_KERNELS[self._batch] else None
        return None if any(op is k for k in GAUGED_KERNELS.values()) else op

    # ------------------------------------------------------------------ sizes
    @staticmethod
    def array_nbytes(npages: int, variant: str | Variant = DEFAULT_DESIGN) -> int:
        """Bytes of the arrays a ``MemMap(npages, variant)`` allocates (without allocating)."""
        get_variant(variant)
        nblocks = max(1, -(-int(npages) // PMD_NPAGES))
        return int(npages) * 2 * np.dtype(_I64).itemsize + nblocks * np.dtype(np.int8).itemsize

    @property
    def nbytes(self) -> int:
        """Bytes of this memmap's arrays."""
        return self.mapping.nbytes + self.index.nbytes + self._order.nbytes

    # ------------------------------------------------------------------ operations
    def apply(self, op, pfn, npages, mapping, index, flag) -> None:
        """Apply a batch of operations in order, with exactly the sequential result.

        Parameters
        ----------
        op : ndarray of shape (N,), int64
            :data:`OP_ASSOCIATE` or :data:`OP_DISASSOCIATE`.
        pfn : ndarray of shape (N,), int64
            First page of each entry (a multiple of 512 for a PMD entry).
        npages : ndarray of shape (N,), int64
            1 (PTE entry) or 512 (PMD entry).
        mapping : ndarray of shape (N,), int64
            address_space id >= 1.
        index : ndarray of shape (N,), int64
            File page offset of the entry's first page (ignored by disassociate).
        flag : ndarray of shape (N,), int64
            The cow/shared argument of associate, the trunc argument of disassociate (0/1).

        Raises
        ------
        ValueError
            If the arrays differ in length or a row is invalid (nothing is applied).
        """
        cols = (op, pfn, npages, mapping, index, flag)
        arrs = [np.ascontiguousarray(a, dtype=_I64) for a in cols]
        n = arrs[0].shape[0]
        if any(a.ndim != 1 or a.shape[0] != n for a in arrs):
            raise ValueError("op, pfn, npages, mapping, index and flag must be 1-D of equal length")
        bad = find_bad_row(*arrs, self.npages)
        if bad is not None:
            row, field, msg = bad
            raise ValueError(f"row {row}: field {field!r}: {msg}")
        self._apply_checked(*arrs)

    def _apply_checked(self, op, pfn, npages, mapping, index, flag) -> None:
        """:meth:`apply` without validation (int64 contiguous arrays, already checked)."""
        if self._ref is None:
            self._batch(
                op,
                pfn,
                npages,
                mapping,
                index,
                flag,
                self.mapping,
                self.index,
                self._order,
                self._stats,
            )
            return
        v, st = self.variant, self._ref
        for k in range(op.shape[0]):  # slow path: a user design without a compiled kernel
            if op[k] == OP_ASSOCIATE:
                v.associate(
                    st, int(pfn[k]), int(npages[k]), int(mapping[k]), int(index[k]), bool(flag[k])
                )
            else:
                v.disassociate(st, int(pfn[k]), int(npages[k]), int(mapping[k]), bool(flag[k]))

    def _check_one(self, pfn, npages, mapping) -> None:
        if npages != 1 and npages != PMD_NPAGES:
            raise ValueError(f"npages must be 1 or {PMD_NPAGES}, got {npages}")
        if pfn < 0 or pfn + npages > self.npages:
            raise ValueError(f"entry [{pfn}, {pfn + npages}) outside the device ({self.npages})")
        if npages == PMD_NPAGES and pfn % PMD_NPAGES:
            raise ValueError(f"a PMD entry must start at a multiple of {PMD_NPAGES}, got {pfn}")
        if mapping < 1:
            raise ValueError(f"mapping must be an address_space id >= 1, got {mapping}")

    def associate(self, pfn: int, npages: int, mapping: int, index: int, shared: bool) -> int:
        """``dax_associate_entry`` for one entry; returns the struct pages written.

        For a PMD entry pass the 512-aligned first pfn, ``npages=512`` and the file index of
        the entry's first page (``index & ~511``).
        """
        if self._op is not None:
            w = self._op(
                0,
                pfn,
                npages,
                mapping,
                index,
                1 if shared else 0,
                self.mapping,
                self.index,
                self._order,
                self._stats,
            )
            if w < 0:
                self._check_one(pfn, npages, mapping)
            return w
        self._check_one(pfn, npages, mapping)
        if self._ref is None:
            one = self._one
            one[0, 0] = 0
            one[1, 0] = pfn
            one[2, 0] = npages
            one[3, 0] = mapping
            one[4, 0] = index
            one[5, 0] = 1 if shared else 0
            return int(
                self._batch(*self._one_rows, self.mapping, self.index, self._order, self._stats)
            )
        return self.variant.associate(self._ref, pfn, npages, mapping, index, bool(shared))

    def disassociate(self, pfn: int, npages: int, mapping: int, trunc: bool) -> int:
        """``dax_disassociate_entry`` for one entry; returns the struct pages written."""
        if self._op is not None:
            w = self._op(
                1,
                pfn,
                npages,
                mapping,
                0,
                1 if trunc else 0,
                self.mapping,
                self.index,
                self._order,
                self._stats,
            )
            if w < 0:
                self._check_one(pfn, npages, mapping)
            return w
        self._check_one(pfn, npages, mapping)
        if self._ref is None:
            one = self._one
            one[0, 0] = 1
            one[1, 0] = pfn
            one[2, 0] = npages
            one[3, 0] = mapping
            one[4, 0] = 0
            one[5, 0] = 1 if trunc else 0
            return int(
                self._batch(*self._one_rows, self.mapping, self.index, self._order, self._stats)
            )
        return self.variant.disassociate(self._ref, pfn, npages, mapping, bool(trunc))

    # ------------------------------------------------------------------ views
    def _head(self, pfn: int) -> int:
        if self.variant.folio and self._order[pfn // PMD_NPAGES] == PMD_ORDER:
            return pfn - pfn % PMD_NPAGES
        return pfn

    def page(self, pfn: int) -> tuple[int, int]:
        """The normalised ``(mapping, index)`` words of page ``pfn``."""
        m = int(self.mapping[pfn])
        return (0 if m == PHANTOM_TAG else m), int(self.index[pfn])

    def folio(self, pfn: int) -> tuple[int, int, int, int]:
        """``(head_pfn, order, mapping, index)`` of the folio containing ``pfn``."""
        head = self._head(pfn)
        order = int(self._order[head // PMD_NPAGES]) if head % PMD_NPAGES == 0 else 0
        if not self.variant.folio:
            order = 0
        return (head, order, *self.page(head))

    def page_owner(self, pfn: int) -> int:
        """What memory failure's ``page->mapping`` fallback reads: an id >= 1, else 0."""
        m = int(self.mapping[self._head(pfn)])
        return m if m >= 1 else 0

    def state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(pfn, mapping, index)`` of the pages not at (0, 0), ascending pfn, normalised."""
        step = 1 << 22  # bounded temporaries, however large the device
        parts = [
            lo
            + np.flatnonzero(
                (self.mapping[lo : lo + step] != 0) | (self.index[lo : lo + step] != 0)
            )
            for lo in range(0, self.npages, step)
        ]
        pfn = np.concatenate(parts).astype(_I64) if parts else np.zeros(0, _I64)
        m = self.mapping[pfn]
        m[m == PHANTOM_TAG] = 0
        return pfn, m, self.index[pfn].copy()

    # ------------------------------------------------------------------ statistics
    @property
    def warnings(self) -> dict[str, int]:
        """Raw warning counts per site (every time the kernel's condition held)."""
        if self._ref is not None:
            sites = self.variant.warning_sites + tuple(
                s for s in self._ref.warnings if s not in self.variant.warning_sites
            )
            return {s: int(self._ref.warnings.get(s, 0)) for s in sites}
        base = len(COUNTERS)
        sites = self.variant.warning_sites
        sites += tuple(s for s in SITES if s not in sites and self._stats[base + SITES.index(s)])
        return {s: int(self._stats[base + SITES.index(s)]) for s in sites}

    def count_warning(self, site: str) -> None:
        """Count one raw warning at ``site`` (one of :data:`SITES`) that a layer above the
        struct pages decides (the fsdax layer's ``folio_put_refcount``, ``pmd_folio_order``
        and ``clear_inode_nrpages``)."""
        if self._ref is not None:
            self._ref.warnings[site] = self._ref.warnings.get(site, 0) + 1
            return
        self._stats[len(COUNTERS) + SITES.index(site)] += 1

    def clobber_mapping(self, pfn: int, value: int) -> None:
        """Write ``value`` into the ``mapping`` word of page ``pfn`` when the page is at
        ``(NULL, 0)``: what a layer above the struct pages scribbles there (the fsdax layer's
        zap of a PMD whose folio was reset under it). No gauge changes: the page leaves no
        share count and enters none."""
        if self.mapping[pfn] == 0 and self.index[pfn] == 0:
            self.mapping[pfn] = value

    def warning_total(self) -> int:
        """Sum of the raw warning counts over every site (cheaper than :attr:`warnings`).

        Every site of :data:`~sim.memmap.layout.SITES`, not only the design's
        ``warning_sites``: the fsdax layer counts ``folio_put_refcount``,
        ``pmd_folio_order`` and ``clear_inode_nrpages`` (:meth:`count_warning`) from what
        the fault rules and the page tables do, whichever sites a design lists, so the total
        (what the hunt's per-op ``no_warnings`` check reads) always equals
        ``sum(self.warnings.values())``, which lists every site that fired."""
        if self._ref is not None:
            return int(sum(self._ref.warnings.values()))
        return sum(map(self._stats.item, self._warn_idx))

    @property
    def folio_orders(self) -> np.ndarray:
        """Folio order per 512-page block (int8, read-only view; 9 = a PMD folio's head block,
        0 otherwise; always zeros for designs without folios)."""
        v = self._order.view()
        v.flags.writeable = False
        return v

    @property
    def warnings_latched(self) -> dict[str, int]:
        """WARN_ON_ONCE: 1 for each site that fired at least once in this memmap, else 0."""
        return {s: int(c > 0) for s, c in self.warnings.items()}

    @property
    def counters(self) -> dict[str, int]:
        """Churn counters (see :data:`sim.memmap.layout.COUNTERS`).

        ``share_inc``/``share_dec`` count increments/decrements of the share word;
        ``flag_set``/``flag_clear`` count pages entering/leaving the flag sentinel (for the
        folio designs: folios for which ``dax_folio_is_shared()`` turns true/false, so an
        order-0 owner put that leaves a phantom counts as a ``flag_set``);
        ``owner_overwritten`` counts pages (folios) whose owner record -- an id, the flag
        with its count, or a Shared(k) count -- is replaced by a non-shared associate;
        ``pages_reset`` counts pages a disassociate returns to (NULL, 0) from another state
        (all 512 pages on the split of an order-9 folio); ``page_updates`` counts struct pages
        written.
        """
        if self._ref is not None:
            return {c: int(self._ref.counters[c]) for c in COUNTERS}
        return {c: int(self._stats[i]) for i, c in enumerate(COUNTERS)}

    @property
    def operations(self) -> int:
        """Associate and disassociate calls so far."""
        c = self.counters
        return c["associate_calls"] + c["disassociate_calls"]

    def residue_pages(self) -> int:
        """Pages left with the flag sentinel and a zero count (the seed's ``(COW, 0)``).

        O(1) with a built-in kernel (histogram bin 0 of a flag design); a scan otherwise.
        """
        if not self.variant.flag_sentinel:
            return 0
        if self._gauged:
            return int(self._stats[H_BASE])
        h = _scan.scan_flag(self.mapping, self.index)
        return int(h[0]) if h.size else 0

    def phantom_pages(self) -> int:
        """Folio-share pages carrying a stale share word from an order-0 owner put (O(1))."""
        if self._ref is not None:
            return len(self._ref.phantoms)
        if self._gauged:
            return int(self._stats[G_PHANTOM])
        return _scan.scan_phantom_tags(self.mapping, self.index)

    def share_histogram(self) -> np.ndarray:
        """Pages by share degree: ``h[k]`` pages are shared by ``k`` (int64, no trailing 0).

        Flag designs: pages with the sentinel, degree = the count (``h[0]`` is the residue).
        Folio designs: Shared(k) folios, weighted by their pages (512 for order 9); phantoms
        are excluded (see :meth:`phantom_pages`).  Other designs: empty.  A copy of the
        incremental histogram (O(HIST_BINS)) unless a degree >= HIST_BINS exists or the
        design has no built-in kernel: then a scan.
        """
        if not (self.variant.flag_sentinel or self.variant.folio):
            return np.zeros(0, _I64)
        if self._gauged and self._stats[H_OVERFLOW] == 0:
            return self._stats[H_BASE : H_BASE + hist_top(self._stats) + 1].copy()
        return self._scan_histogram()

    def _scan_histogram(self) -> np.ndarray:
        if self.variant.flag_sentinel:
            h = _scan.scan_flag(self.mapping, self.index)
        elif self.variant.folio:
            exclude = None
            if self._ref is not None and self._ref.phantoms:
                exclude = np.sort(np.fromiter(self._ref.phantoms, _I64))
            h = _scan.scan_folio(self.mapping, self.index, self._order, exclude)
        else:
            return np.zeros(0, _I64)
        nz = np.flatnonzero(h)
        return h[: nz[-1] + 1] if nz.size else np.zeros(0, _I64)

    def share_degree_max(self) -> int:
        """Largest share degree present (0 if nothing is shared); O(HIST_BINS) at most."""
        if (
            (self.variant.flag_sentinel or self.variant.folio)
            and self._gauged
            and self._stats[H_OVERFLOW] == 0
        ):
            return max(int(hist_top(self._stats)), 0)
        h = self.share_histogram()
        return h.size - 1 if h.size else 0

    def scan_stats(self) -> dict:
        """``residue_pages``, ``phantom_pages`` and ``share_histogram`` recomputed by scanning
        every page (one pass over the memmap): the check of the incremental gauges."""
        residue = 0
        if self.variant.flag_sentinel:
            h = _scan.scan_flag(self.mapping, self.index)
            residue = int(h[0]) if h.size else 0
        if self._ref is not None:
            phantom = len(self._ref.phantoms)
        else:
            phantom = _scan.scan_phantom_tags(self.mapping, self.index)
        return {
            "residue_pages": residue,
            "phantom_pages": phantom,
            "share_histogram": self._scan_histogram(),
        }

    def summary(self) -> dict:
        """JSON-ready summary of this memmap."""
        return {
            "variant": self.variant.name,
            "pages": self.npages,
            "operations": self.operations,
            "warnings": self.warnings,
            "warnings_latched": self.warnings_latched,
            "counters": self.counters,
            "residue_pages": self.residue_pages(),
            "phantom_pages": self.phantom_pages(),
            "share_degree_max": self.share_degree_max(),
        }
