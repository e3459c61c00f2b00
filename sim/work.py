"""Work records: what one functional operation touched, for the timing model to price.

The functional model (``sim.fs``, ``sim.dax``, ``sim.memmap``) knows nothing of time. Every
operation it performs returns a :class:`WorkRecord` that says what it touched; ``sim.timing``
turns a record into CPU cycles on a hardware profile.

Cache lines are named by ``(structure, key)``: the structure is one of :data:`STRUCTURES` and
the key an int64 that identifies one 64-byte line within that structure's own address space
(for ``struct_page`` the key is the pfn: one struct page is one 64 B line). The timing layer
lays each structure out in its own region (the memmap in DRAM or on pmem), so the same key
always lands on the same simulated address and a cache model sees real locality.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["STRUCTURES", "WorkRecord"]

#: Metadata structures whose cache lines a record names.
STRUCTURES = ("struct_page", "xarray_node", "extent", "refcount", "pagetable", "rmap")


@dataclass(slots=True)
class WorkRecord:
    """What one operation touched.

    Attributes
    ----------
    op : str
        Operation type (``"read_fault"``, ``"write_fault"``, ``"cow_fault"``, ``"pwrite"``,
        ``"clone"``, ``"truncate"``, ``"memory_failure"`` ...).
    lines_read, lines_written : dict of str to list of int
        Cache-line keys read and written, per structure in :data:`STRUCTURES`.
    pmem_read, pmem_write : list of (int, int)
        Data accesses to the pmem device as ``(byte_address, size_bytes)``.
    memcpy_bytes : int
        Bytes copied by the CPU (CoW copies, copy-around), already included in
        ``pmem_read``/``pmem_write`` as accesses; this is the CPU-side copy length.
    locks : list of tuple
        Locks taken, in order: ``("xa_lock", mapping_id)`` or ``("entry", mapping_id, index)``.
    tlb_shootdowns : int
        PTE/PMD unmaps that need a TLB shootdown (one per unmap call).
    faults : int
        Page faults taken (fault entry and exit are priced per fault).
    pages_mapped : int
        PTEs or PMDs installed.
    warnings : int
        WARN conditions that held during the operation (raw).
    atomics : int
        Locked read-modify-writes on struct-page lines (page and folio reference counts
        and map counts); the lines themselves are in ``lines_written``. Plain stores to a
        struct page (``mapping``, ``index``, ``share``) are not atomics.
    """

    op: str
    lines_read: dict[str, list[int]] = field(default_factory=dict)
    lines_written: dict[str, list[int]] = field(default_factory=dict)
    pmem_read: list[tuple[int, int]] = field(default_factory=list)
    pmem_write: list[tuple[int, int]] = field(default_factory=list)
    memcpy_bytes: int = 0
    locks: list[tuple] = field(default_factory=list)
    tlb_shootdowns: int = 0
    faults: int = 0
    pages_mapped: int = 0
    warnings: int = 0
    atomics: int = 0

    def read(self, structure: str, *keys: int) -> None:
        """Record cache lines read in ``structure``."""
        self.lines_read.setdefault(structure, []).extend(keys)

    def write(self, structure: str, *keys: int) -> None:
        """Record cache lines written in ``structure`` (a write implies the line was read)."""
        self.lines_written.setdefault(structure, []).extend(keys)

    def merge(self, other: "WorkRecord") -> None:
        """Add ``other``'s work to this record (the op name stays)."""
        for s, k in other.lines_read.items():
            self.lines_read.setdefault(s, []).extend(k)
        for s, k in other.lines_written.items():
            self.lines_written.setdefault(s, []).extend(k)
        self.pmem_read.extend(other.pmem_read)
        self.pmem_write.extend(other.pmem_write)
        self.memcpy_bytes += other.memcpy_bytes
        self.locks.extend(other.locks)
        self.tlb_shootdowns += other.tlb_shootdowns
        self.faults += other.faults
        self.pages_mapped += other.pages_mapped
        self.warnings += other.warnings
        self.atomics += other.atomics

    def count_lines(self) -> dict[str, int]:
        """Number of distinct lines touched per structure."""
        out: dict[str, int] = {}
        for s in STRUCTURES:
            keys = set(self.lines_read.get(s, ())) | set(self.lines_written.get(s, ()))
            if keys:
                out[s] = len(keys)
        return out
