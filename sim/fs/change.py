"""What one filesystem operation did: the record the DAX layer and the counters read."""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.constants import BLOCK_SIZE

__all__ = ["FsChange", "Extent", "FsError", "HOLE", "UNWRITTEN", "WRITTEN", "BLOCK_SIZE"]

#: Filesystem block size in bytes (= page size; DAX needs them equal).

#: Extent states (``Extent.state``).
HOLE = 0
UNWRITTEN = 1
WRITTEN = 2


class FsError(Exception):
    """A filesystem call failed with an errno.

    Parameters
    ----------
    errno : str
        Errno name: ``"EINVAL"``, ``"EBADE"``, ``"ENOSPC"``, ``"ENOENT"``, ``"EISDIR"``,
        ``"EFBIG"``, ``"EFAULT"`` ...
    message : str
        What went wrong.
    """

    def __init__(self, errno: str, message: str = ""):
        super().__init__(f"{errno}: {message}" if message else errno)
        self.errno = errno
        self.message = message
        #: What the call changed before it failed (a write of several buffers that ran out
        #: of space after the first: the earlier write(2) calls stay), else None.
        self.partial = None


@dataclass(frozen=True)
class Extent:
    """One piece of a file's block map (see :meth:`FileSystem.bmap`).

    Attributes
    ----------
    fblock : int
        First file block.
    pblock : int
        First physical block, -1 for a hole.
    nblocks : int
        Length in blocks.
    state : int
        ``HOLE``, ``UNWRITTEN`` or ``WRITTEN``.
    shared : bool
        Physical refcount > 1 over the whole piece.
    """

    fblock: int
    pblock: int
    nblocks: int
    state: int
    shared: bool


@dataclass
class FsChange:
    """What a filesystem operation did.

    Attributes
    ----------
    remapped : list of (ino, fblock, nblocks)
        File ranges whose physical block changed or went away (CoW, punch, truncate, clone or
        dedupe destination, unlink, zero range): DAX entries there are stale.
    newly_mapped : list of (ino, fblock, nblocks)
        Ranges that were holes or unwritten and are now written, or holes a clone or dedupe
        filled (zero-page entries there are stale).
    blocks_allocated, blocks_freed : int
        Device blocks allocated and freed.
    cow_blocks, cow_bytes : int
        Blocks copied on write and bytes copied from the old block (copy-around or full copy).
    refcount_changes : int
        Block-granular refcount increments plus decrements.
    refcount_increments, refcount_decrements : int
        The two parts of ``refcount_changes``.
    extent_records_touched, refcount_records_touched : int
        Extent-map and refcount records read or rewritten.
    bytes_deduped : int
        FIDEDUPERANGE: bytes reported deduped (the requested length).
    remap_blocks : int
        Blocks shared by clone or dedupe.
    blocks_zeroed : int
        Blocks zeroed whole on allocation or unwritten conversion (DAX: XFS_BMAPI_ZERO).
    size_before, size_after : int
        File size around the operation (of the inode the operation targets).
    pmem_read, pmem_write : list of (byte_address, size_bytes)
        Data accesses on the device: copies, stores and zeroing.
    """

    remapped: list[tuple[int, int, int]] = field(default_factory=list)
    newly_mapped: list[tuple[int, int, int]] = field(default_factory=list)
    blocks_allocated: int = 0
    blocks_freed: int = 0
    cow_blocks: int = 0
    cow_bytes: int = 0
    refcount_changes: int = 0
    refcount_increments: int = 0
    refcount_decrements: int = 0
    extent_records_touched: int = 0
    refcount_records_touched: int = 0
    bytes_deduped: int = 0
    remap_blocks: int = 0
    blocks_zeroed: int = 0
    size_before: int = 0
    size_after: int = 0
    pmem_read: list[tuple[int, int]] = field(default_factory=list)
    pmem_write: list[tuple[int, int]] = field(default_factory=list)
