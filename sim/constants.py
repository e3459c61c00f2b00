"""Constants every layer shares: page and PMD geometry, DAX entry bits, the designs' names,
the default clock, and the one vocabulary of operation kinds.

This module is configuration: any module may import it, and it imports no part of daxsim.

The geometry is x86-64 with 4 KiB pages (``PAGE_SHIFT``, ``PMD_ORDER`` in
arch/x86/include/asm/page_types.h and pgtable_types.h); the XFS block size of the simulated
filesystem equals the page size, as fsdax requires (``xfs_setup_dax_always``).
"""

from __future__ import annotations

import enum

__all__ = [
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "BLOCK_SIZE",
    "PMD_ORDER",
    "PMD_NR_PAGES",
    "PMD_SIZE",
    "DAX_SHIFT",
    "DAX_LOCKED",
    "DAX_PMD",
    "DAX_ZERO_PAGE",
    "DAX_EMPTY",
    "SINGLE_OWNER",
    "COW_INDEX",
    "PAGE_SHARE",
    "FOLIO_SHARE",
    "FOLIO_SHARE_RESET",
    "KERNEL_DESIGNS",
    "BUILTIN_DESIGNS",
    "DEFAULT_DESIGN",
    "DEFAULT_SCENARIO_DESIGN",
    "DEFAULT_CPU_FREQ_GHZ",
    "OpKind",
    "HUNT_KINDS",
]

# --------------------------------------------------------------------------- geometry

#: log2 of the page size.
PAGE_SHIFT = 12
#: Bytes of a base page.
PAGE_SIZE = 1 << PAGE_SHIFT
#: Bytes of a filesystem block (the page size: fsdax needs block size == page size).
BLOCK_SIZE = PAGE_SIZE
#: Folio order of a PMD mapping (``PMD_ORDER``; 2 MiB with 4 KiB pages).
PMD_ORDER = 9
#: Base pages in a PMD mapping (``PG_PMD_NR``).
PMD_NR_PAGES = 1 << PMD_ORDER
#: Bytes of a PMD mapping (``PMD_SIZE``).
PMD_SIZE = PAGE_SIZE << PMD_ORDER

# --------------------------------------------------------------------------- DAX entries

#: The pfn of a DAX xarray value entry is stored above these flag bits (fs/dax.c).
DAX_SHIFT = 4
#: ``DAX_LOCKED``: the entry is locked.
DAX_LOCKED = 1 << 0
#: ``DAX_PMD``: the entry maps a PMD.
DAX_PMD = 1 << 1
#: ``DAX_ZERO_PAGE``: the entry maps the zero page (a read fault on a hole).
DAX_ZERO_PAGE = 1 << 2
#: ``DAX_EMPTY``: a placeholder with no pfn, locked while a fault allocates.
DAX_EMPTY = 1 << 3

# --------------------------------------------------------------------------- designs

#: v4.17-v5.19: one owner per page.
SINGLE_OWNER = "single-owner"
#: v6.0-v6.1: ``PAGE_MAPPING_DAX_COW`` and a share count in ``page->index``.
COW_INDEX = "cow-index"
#: v6.2-v6.14: ``page->share`` and ``PAGE_MAPPING_DAX_SHARED``.
PAGE_SHARE = "page-share"
#: v6.15-v7.0: ``folio->share`` on PMD folios.
FOLIO_SHARE = "folio-share"
#: v7.1+: folio-share with the share count zeroed on every final put
#: (``dax_folio_reset_order``).
FOLIO_SHARE_RESET = "folio-share-reset"
#: The designs of released kernels, oldest first (each one's releases:
#: ``sim.memmap.VARIANTS[name].kernel_range``).
KERNEL_DESIGNS = (SINGLE_OWNER, COW_INDEX, PAGE_SHARE, FOLIO_SHARE, FOLIO_SHARE_RESET)
#: Every built-in design, in kernel order.
BUILTIN_DESIGNS = KERNEL_DESIGNS
#: The design of the model layers and of ``daxsim xfsio`` when none is named (balanced:
#: every share is dropped by the put that matches it).
DEFAULT_DESIGN = PAGE_SHARE
#: The design of a scenario that names none (folio-share, of 6.15-7.0).
DEFAULT_SCENARIO_DESIGN = FOLIO_SHARE

# --------------------------------------------------------------------------- clock

#: Core clock (GHz) when no hardware profile says otherwise: simulated time counts cycles
#: of this clock (Xeon Platinum 8260, the base profile's ``cpu.freq_ghz``).
DEFAULT_CPU_FREQ_GHZ = 2.2

# --------------------------------------------------------------------------- operations


class OpKind(enum.IntEnum):
    """The kinds of file-level operation, one vocabulary for every layer.

    The value is the ``op`` code of a workload stream (:data:`workloads.ops.OP_DTYPE`);
    :attr:`label` names the kind in results (latency table, counts); :attr:`xfsio` is the
    xfs_io command that does it (``@`` marks the project's own commands); the hunt draws the
    kinds of :data:`HUNT_KINDS`, by :attr:`hunt` name.  The fields a stream row of each kind
    uses (:mod:`workloads.ops`):

    Attributes
    ----------
    CREATE
        Create empty file ``file`` (``open -f``); the id must be new.
    WRITE
        ``pwrite``: ``length_bytes`` bytes of byte ``arg & 0xff`` at ``offset_bytes``;
        extends EOF. A CoW write when the blocks are shared.
    CLONE
        ``FICLONE`` (``arg & ARG_WHOLE_FILE``) of ``src`` into ``file``, or ``FICLONERANGE``
        of ``src[src_offset_bytes : +length_bytes]`` to ``file[offset_bytes:]`` (length 0 =
        to source EOF). Kernel remap rules apply (block-aligned offsets; a partial EOF block
        only to or past the destination EOF).
    DEDUPE
        ``FIDEDUPERANGE`` of ``src[src_offset_bytes : +length_bytes]`` against
        ``file[offset_bytes : +length_bytes]``; shares blocks only if the bytes are equal.
    MMAP
        ``mmap(MAP_SHARED)`` of ``file[offset_bytes : +length_bytes]`` by ``pid``; writable
        if ``arg & ARG_WRITABLE``; huge-aligned if ``arg & ARG_PMD`` (else placed off PMD
        colour: PTE faults only). One mapping per ``(pid, file)``.
    MUNMAP
        Remove ``pid``'s mapping of ``file`` (no xarray entries are removed).
    READ_FAULT
        Loads through ``pid``'s mapping of ``file`` over ``[offset_bytes, +length_bytes)``:
        a fault on each page not yet mapped. Generators emit one row per expected fault:
        length 4 KiB, or with ``arg & ARG_PMD`` a 2 MiB-aligned 2 MiB range in a
        huge-aligned mapping (one PMD fault, or 512 PTE faults if the kernel falls back).
    WRITE_FAULT
        A store of byte ``(arg >> 8) & 0xff`` over the range through a writable mapping: a
        write fault (CoW on a shared extent) where the page is not mapped writable.
    TRUNCATE
        ``ftruncate(file, offset_bytes)``.
    PUNCH
        ``fallocate(PUNCH_HOLE|KEEP_SIZE)`` of the range.
    ZERO
        ``fallocate(ZERO_RANGE)`` of the range; extends EOF unless ``arg & ARG_KEEP_SIZE``.
    UNSHARE
        ``fallocate(UNSHARE_RANGE)`` of the range.
    UNLINK
        Remove ``file`` (every mapping of it is gone first); its id is never used again.
    FSYNC
        ``fsync(file)`` (writeback of DIRTY/TOWRITE entries).
    POISON
        Memory failure of the pmem page(s) backing ``file[offset_bytes : +length_bytes]``
        through ``pid``'s mapping (MADV_HWPOISON); with ``file == -1`` the device byte range
        ``[offset_bytes, +length_bytes)``.
    READ
        ``pread`` of the range (clipped at EOF).
    """

    CREATE = 1
    WRITE = 2
    CLONE = 3
    DEDUPE = 4
    MMAP = 5
    MUNMAP = 6
    READ_FAULT = 7
    WRITE_FAULT = 8
    TRUNCATE = 9
    PUNCH = 10
    ZERO = 11
    UNSHARE = 12
    UNLINK = 13
    FSYNC = 14
    POISON = 15
    READ = 16

    @property
    def label(self) -> str:
        """The kind's name in results (``write_fault``, ...)."""
        return self.name.lower()

    @property
    def xfsio(self) -> str:
        """The xfs_io command that does this kind of operation."""
        return _XFSIO[self]

    @property
    def hunt(self) -> str | None:
        """The name the hunt gives this kind (None: the hunt does not draw it)."""
        return _HUNT_NAME.get(self)

    @classmethod
    def from_xfsio(cls, command: str) -> OpKind:
        """The kind xfs_io command ``command`` does (``KeyError`` if none)."""
        return _XFSIO_KIND[command]

    @classmethod
    def from_hunt(cls, name: str) -> OpKind:
        """The kind the hunt calls ``name`` (``KeyError`` if none)."""
        return _HUNT_KIND[name]


_XFSIO = {
    OpKind.CREATE: "open -f",
    OpKind.WRITE: "pwrite",
    OpKind.CLONE: "reflink",
    OpKind.DEDUPE: "dedupe",
    OpKind.MMAP: "mmap",
    OpKind.MUNMAP: "munmap",
    OpKind.READ_FAULT: "mread",
    OpKind.WRITE_FAULT: "mwrite",
    OpKind.TRUNCATE: "truncate",
    OpKind.PUNCH: "fpunch",
    OpKind.ZERO: "fzero",
    OpKind.UNSHARE: "funshare",
    OpKind.UNLINK: "@unlink",
    OpKind.FSYNC: "fsync",
    OpKind.POISON: "@hwpoison",
    OpKind.READ: "pread",
}
_XFSIO_KIND = {c: k for k, c in _XFSIO.items()}

#: The hunt's names of the kinds it draws, in the order of their codes in the compiled op
#: generator (:mod:`sim.hunt.jit.generate`).
_HUNT_ORDER = (
    ("pwrite", OpKind.WRITE),
    ("truncate", OpKind.TRUNCATE),
    ("punch", OpKind.PUNCH),
    ("zero", OpKind.ZERO),
    ("unshare", OpKind.UNSHARE),
    ("clone", OpKind.CLONE),
    ("dedupe", OpKind.DEDUPE),
    ("mread", OpKind.READ_FAULT),
    ("mwrite", OpKind.WRITE_FAULT),
    ("hwpoison", OpKind.POISON),
    ("munmap", OpKind.MUNMAP),
    ("unlink", OpKind.UNLINK),
)
_HUNT_NAME = {k: n for n, k in _HUNT_ORDER}
_HUNT_KIND = {n: k for n, k in _HUNT_ORDER}
#: The kinds the hunt draws, by hunt name, in the order of their codes.
HUNT_KINDS = tuple(n for n, _ in _HUNT_ORDER)
