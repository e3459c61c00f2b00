"""A reflink filesystem for small devices: :class:`FileSystem`'s behaviour, cheaper per call.

:class:`BlockFileSystem` behaves exactly as :class:`sim.fs.FileSystem` (same return values,
errnos and the check that fails first, allocator decisions, block maps, refcounts, rmap,
contents, and the whole :class:`FsChange` of every call, record counts included) but keeps
its state in plain Python lists instead of numpy-backed run maps, which is far cheaper for
the hunt's handful of small files on a device of at most :data:`MAX_BLOCKS` blocks (memory is
two ints per device block):

* per inode its data fork as four plain lists (file start, length, physical start, state)
  of maximal extents, spliced with bisect like the list form of FileSystem's run maps;
* per device block a list ``rc`` of reference counts (0 = free) and a list ``cid`` of content
  ids (:class:`~sim.fs.content.ContentStore`, interned in the same order as FileSystem; a
  freed block keeps its content id, as FileSystem's content map does);
* the free space as two sorted lists of maximal free runs (starts, lengths): exactly the list
  form of FileSystem's free map, so the allocator (first fit near a goal, largest-run
  fallback) takes the same blocks.

The rows FileSystem computes from its maximally merged run maps (extents: contiguous
physical blocks of one state; cut where the refcount changes) are rebuilt by
:meth:`BlockFileSystem._rows` (extents cut at refcount changes found by slicing the
per-block counts), so every decision made on rows (allocation goals, the pieces of a zeroing,
record counts) is the same. Most operations are FileSystem's own functions, bound here: the
checks and compositions (argument checks, clone, dedupe, fallocate modes, pwrite, unlink,
...) and the row paths (write, CoW and allocation faults, remap, the first-fit allocator,
iomap, reads, the refcount sweep), which run on this state through a few primitives
(``_map_shared_rows``/``_map_rows``, ``_splice_ext``, ``_free_lists``/``_take_free``,
``_iomap_one``, ``_cid_pieces``, ``_cid_rows``/``_set_content_rows``). The rest (truncate,
unmap, free, refcount updates, reads of content ids) are ports to the per-block state.

Not kept: the md5 prefix cache (md5 values are equal), the CoW staging fork (FileSystem's is
empty between calls), FileSystem's run-map attributes (``free``, ``refc``, ``content``).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from itertools import groupby

import numpy as np

from sim.fs.change import BLOCK_SIZE, HOLE, UNWRITTEN, WRITTEN, Extent, FsChange, FsError
from sim.fs.content import ZERO_CID, ContentStore
from sim.fs.filesystem import (
    MAX_FILE_SIZE,
    FileSystem,
    _cid_byte_runs,
    _delta_runs,
    _extents_of_rows,
    _franges_rows,
    _row_of,
)

__all__ = ["BlockFileSystem", "BlockInode", "MAX_BLOCKS"]

BS = BLOCK_SIZE
_I64 = np.int64
_EMPTY = np.zeros(0, dtype=_I64)
#: Largest device this model is meant for (per-block lists).
MAX_BLOCKS = 1 << 16


def _ceil_blocks(nbytes: int) -> int:
    return -(-nbytes // BS)


class BlockInode:
    """One regular file: size, data fork (maximal extents as lists ``S`` file start, ``N``
    length, ``P`` physical start, ``T`` state), reflink flag."""

    __slots__ = ("ino", "size", "S", "N", "P", "T", "reflink")

    def __init__(self, ino: int):
        self.ino = ino
        self.size = 0
        self.S: list[int] = []
        self.N: list[int] = []
        self.P: list[int] = []
        self.T: list[int] = []
        self.reflink = False

    def find(self, fb: int) -> int:
        """Index of the extent holding file block ``fb``, -1 for a hole."""
        S = self.S
        i = bisect_right(S, fb) - 1
        if i >= 0 and S[i] + self.N[i] > fb:
            return i
        return -1


class BlockFileSystem:
    """A reflink filesystem of ``nblocks`` 4 KiB blocks, per-block state (small devices).

    Parameters
    ----------
    nblocks : int
        Device size in blocks (at most :data:`MAX_BLOCKS` is the intended use; any positive
        size works, memory is per block).
    fill_byte : int, optional
        Byte the raw device held before mkfs (``@scratch_dev_fill``); None = zeros.
    """

    def __init__(self, nblocks: int, *, fill_byte: int | None = None):
        if nblocks <= 0:
            raise FsError("EINVAL", f"device size must be positive, got {nblocks} blocks")
        self.nblocks = int(nblocks)
        self.fill_byte = fill_byte
        self.contents = ContentStore(BS)
        self.fill_cid = ZERO_CID if not fill_byte else self.contents.uniform(fill_byte)
        self.rc: list[int] = [0] * self.nblocks
        self.cid: list[int] = [self.fill_cid] * self.nblocks
        self._fs: list[int] = [0]  # free runs: starts
        self._fl: list[int] = [self.nblocks]  # free runs: lengths
        self._nfree = self.nblocks
        self._init_namespace()

    # ------------------------------------------------------------------ FileSystem's own code
    # Pure checks and compositions of the primitives below: the very functions of FileSystem,
    # so argument checks, their order and the call sequence are identical by construction.
    _init_namespace = FileSystem._init_namespace
    _check_path = FileSystem._check_path
    create = FileSystem.create
    open = FileSystem.open
    open_ex = FileSystem.open_ex
    lookup = FileSystem.lookup
    exists = FileSystem.exists
    paths = FileSystem.paths
    path_of = FileSystem.path_of
    _ip = FileSystem._ip
    size = FileSystem.size
    is_reflink = FileSystem.is_reflink
    unlink = FileSystem.unlink
    fsync = FileSystem.fsync
    free_blocks = FileSystem.free_blocks
    _zero_posteof = FileSystem._zero_posteof
    _check_range = FileSystem._check_range
    pwrite = FileSystem.pwrite
    _falloc_checks = FileSystem._falloc_checks
    _falloc_setsize = FileSystem._falloc_setsize
    fallocate = FileSystem.fallocate
    _free_file_space = FileSystem._free_file_space
    punch = FileSystem.punch
    zero_range = FileSystem.zero_range
    unshare = FileSystem.unshare
    _remap_checks = FileSystem._remap_checks
    _check_len = FileSystem._check_len
    clone = FileSystem.clone
    dedupe = FileSystem.dedupe
    _copy_around = FileSystem._copy_around
    counters = FileSystem.counters

    _inode_class = BlockInode
    _open_ino = FileSystem._open_ino

    # ------------------------------------------------------------------ rows
    def _rows(self, ip: BlockInode, b0: int, b1: int, shared: bool = True) -> list:
        """Rows ``(f, n, p, state, count)`` of ``[b0, b1)``: the extents clipped to it, cut
        where the refcount changes if ``shared`` (else count 0); holes as
        ``(f, n, -1, HOLE, 0)``. What FileSystem's ``_map_shared_rows`` (or ``_map_rows``)
        gives on its maximally merged run maps."""
        if b1 <= b0:
            return []
        S = ip.S
        if not S:
            return [(b0, b1 - b0, -1, HOLE, 0)]
        N, P, T = ip.N, ip.P, ip.T
        i = bisect_right(S, b0) - 1
        if i < 0 or S[i] + N[i] <= b0:
            i += 1
        ns = len(S)
        rc = self.rc
        out = []
        pos = b0
        while i < ns:
            s = S[i]
            if s >= b1:
                break
            a = b0 if s < b0 else s
            e = s + N[i]
            if e > b1:
                e = b1
            if a > pos:
                out.append((pos, a - pos, -1, HOLE, 0))
            p = P[i] + a - s
            k = e - a
            if not shared:
                out.append((a, k, p, T[i], 0))
            elif k == 1:
                out.append((a, 1, p, T[i], rc[p]))
            else:
                seg = rc[p : p + k]
                c = seg[0]
                if seg.count(c) == k:
                    out.append((a, k, p, T[i], c))
                else:
                    st = T[i]
                    q = a
                    for c, g in groupby(seg):
                        j = len(list(g))
                        out.append((q, j, p + q - a, st, c))
                        q += j
            pos = e
            i += 1
        if pos < b1:
            out.append((pos, b1 - pos, -1, HOLE, 0))
        return out

    def _splice_ext(self, ip: BlockInode, lo: int, hi: int, rows: list) -> int:
        """Replace the data fork over ``[lo, hi)`` with ``rows`` ``(f, n, p, state)`` (sorted,
        inside it), merging touching compatible extents; return the records touched (as
        FileSystem's ``RunMap.splice_rows``: extents overlapping plus rows inserted)."""
        S, N, P, T = ip.S, ip.N, ip.P, ip.T
        i1 = bisect_left(S, hi)
        i0 = bisect_right(S, lo) - 1
        if i0 < 0 or S[i0] + N[i0] <= lo:
            i0 += 1
        if i1 < i0:
            i1 = i0
        if i1 == i0 and not rows:
            return 0
        w = []
        a, b = i0, i1
        if a > 0:
            a -= 1
            w.append((S[a], N[a], P[a], T[a]))
        if i1 > i0 and S[i0] < lo:
            w.append((S[i0], lo - S[i0], P[i0], T[i0]))
        w += rows
        if i1 > i0:
            j = i1 - 1
            e = S[j] + N[j]
            if e > hi:
                w.append((hi, e - hi, P[j] + hi - S[j], T[j]))
        if b < len(S):
            w.append((S[b], N[b], P[b], T[b]))
            b += 1
        out = []
        if w:
            m = w[0]
            for r in w[1:]:
                ln = m[1]
                if m[0] + ln == r[0] and m[2] + ln == r[2] and m[3] == r[3]:
                    m = (m[0], ln + r[1], m[2], m[3])
                else:
                    out.append(m)
                    m = r
            out.append(m)
        S[a:b] = [r[0] for r in out]
        N[a:b] = [r[1] for r in out]
        P[a:b] = [r[2] for r in out]
        T[a:b] = [r[3] for r in out]
        return (i1 - i0) + len(rows)

    def _map_shared_rows(self, ip: BlockInode, b0: int, b1: int) -> list:
        """FileSystem's ``_map_shared_rows``: :meth:`_rows` with refcounts."""
        return self._rows(ip, b0, b1)

    def _map_rows(self, ip: BlockInode, b0: int, b1: int) -> list:
        """FileSystem's ``_map_rows``: rows ``(f, n, p, state)`` (holes: p=-1, HOLE)."""
        return [r[:4] for r in self._rows(ip, b0, b1, False)]

    def _goal_after(self, ip: BlockInode, b: int) -> int | None:
        """Allocation goal after file block ``b - 1``: the physical block following its
        mapping, None for a hole."""
        i = ip.find(b - 1)
        return None if i < 0 else ip.P[i] + (b - ip.S[i])

    # ------------------------------------------------------------------ space
    def _take(self, i: int, s: int, n: int) -> None:
        """Remove ``[s, s + n)`` from free run ``i`` (which holds it)."""
        S, L = self._fs, self._fl
        rs = S[i]
        re = rs + L[i]
        if s == rs:
            if n == L[i]:
                del S[i]
                del L[i]
            else:
                S[i] = s + n
                L[i] -= n
        else:
            L[i] = s - rs
            if s + n < re:
                S.insert(i + 1, s + n)
                L.insert(i + 1, re - s - n)
        self.rc[s : s + n] = [1] * n

    def _free_lists(self) -> tuple[list, list]:
        return self._fs, self._fl

    _take_free = _take
    _alloc_l = FileSystem._alloc_l
    _alloc_runs = _alloc_l  # the free map is always in list form here
    _alloc_rows = FileSystem._alloc_rows

    def _free_rows(self, rows: list, ch: FsChange) -> None:
        """Return ``(p, n)`` ranges to the free runs (merging neighbours)."""
        if not rows:
            return
        S, L = self._fs, self._fl
        k = 0
        for p, n in rows:
            k += n
            i = bisect_left(S, p)
            jp = i > 0 and S[i - 1] + L[i - 1] == p
            jn = i < len(S) and S[i] == p + n
            if jp and jn:
                L[i - 1] += n + L[i]
                del S[i]
                del L[i]
            elif jp:
                L[i - 1] += n
            elif jn:
                S[i] = p
                L[i] += n
            else:
                S.insert(i, p)
                L.insert(i, n)
        self._nfree += k
        self.blocks_freed += k
        ch.blocks_freed += k

    def _refs_list(self, ranges: list, delta: int, ch: FsChange) -> None:
        """Add ``delta`` to the refcount of every block of the ``(p, n)`` ranges (may repeat);
        blocks reaching 0 are freed. Accounting as FileSystem's ``_refs_rows``: the ranges
        are summed into maximal runs of one delta, each cut into refcount-record pieces."""
        if not ranges:
            return
        runs = _delta_runs(ranges, delta)
        if not runs:
            return
        k = sum(n * abs(d) for _, n, d in runs)
        if delta > 0:
            self.refcount_increments += k
            ch.refcount_increments += k
        else:
            self.refcount_decrements += k
            ch.refcount_decrements += k
        ch.refcount_changes += k
        rc = self.rc
        had = 0
        keep = 0
        freed: list = []
        for s0, n0, d in runs:
            # the run's refcount-record pieces: runs of one count (a record, or a gap of 1s)
            seg = rc[s0 : s0 + n0]
            c = seg[0]
            if seg.count(c) == n0:
                pieces = ((c, n0),)
            else:
                pieces = [(c, len(list(g))) for c, g in groupby(seg)]
            b = s0
            for c, k in pieces:
                nc = c + d
                if nc < 0:
                    raise AssertionError("refcount below zero")
                if c >= 2:
                    had += 1
                if nc >= 2:
                    keep += 1
                rc[b : b + k] = [nc] * k
                if nc == 0:
                    if freed and freed[-1][0] + freed[-1][1] == b:
                        freed[-1][1] += k
                    else:
                        freed.append([b, k])
                b += k
        ch.refcount_records_touched += had + keep
        if freed:
            self._free_rows(freed, ch)

    def refcount(self, pblock: int) -> int:
        """Reference count of a physical block (0 = free); FsError EINVAL outside the device."""
        if 0 <= pblock < self.nblocks:
            return self.rc[pblock]
        raise FsError("EINVAL", f"block {pblock} outside the device (0..{self.nblocks - 1})")

    # ------------------------------------------------------------------ maps
    def bmap_arrays(self, ino: int, fblock: int, nblocks: int = 1):
        """Block map of ``[fblock, fblock + nblocks)`` as arrays ``(f, n, p, state, refcount)``."""
        ip = self._ip(ino)
        rows = self._rows(ip, fblock, fblock + nblocks)
        if not rows:
            return _EMPTY, _EMPTY.copy(), _EMPTY.copy(), _EMPTY.copy(), _EMPTY.copy()
        return tuple(np.array(rows, dtype=_I64).T.copy())

    def shared_rows(self, ino: int, fblock: int, nblocks: int) -> list[tuple[int, int]]:
        """``(fblock, nblocks)`` of the rows of :meth:`bmap_arrays` over the range whose
        refcount is above 1, in file order (:meth:`FileSystem.shared_rows`)."""
        return [
            (f, n)
            for f, n, _p, _st, c in self._rows(self._ip(ino), fblock, fblock + nblocks)
            if c > 1
        ]

    def bmap(self, ino: int, fblock: int, nblocks: int = 1) -> list[Extent]:
        """Block map of ``[fblock, fblock + nblocks)``: extents split where sharing changes."""
        return _extents_of_rows(self._rows(self._ip(ino), fblock, fblock + nblocks))

    def extent_count(self, ino: int) -> int:
        """Number of data-fork records of the inode."""
        ip = self._ip(ino)
        return len(ip.S)

    def rmap(self, pblock: int) -> list[tuple[int, int]]:
        """Every ``(ino, fblock)`` of a live inode whose data fork maps ``pblock``."""
        out = []
        for ino, ip in self.inodes.items():
            for s, n, p in zip(ip.S, ip.N, ip.P, strict=True):
                if p <= pblock < p + n:
                    out.append((ino, s + pblock - p))
        return sorted(out)

    iomap = FileSystem.iomap

    def _iomap_one(self, ip: BlockInode, fblock: int) -> tuple[int, int, int, bool]:
        """:meth:`iomap` of one block: its extent and the block's refcount."""
        i = ip.find(fblock)
        if i < 0:
            return HOLE, -1, 1, False
        p = ip.P[i] + fblock - ip.S[i]
        return ip.T[i], p, 1, self.rc[p] > 1

    def _cid_rows(self, p0: int, n0: int) -> list:
        """Content of physical range ``[p0, p0+n0)``: maximal rows ``(p, n, cid)``."""
        seg = self.cid[p0 : p0 + n0]
        c = seg[0]
        if seg.count(c) == n0:
            return [(p0, n0, c)]
        out = []
        p = p0
        for c, g in groupby(seg):
            k = len(list(g))
            out.append((p, k, c))
            p += k
        return out

    def _cid_of(self, pblock: int) -> int:
        if 0 <= pblock < self.nblocks:
            return self.cid[pblock]
        return self.fill_cid

    def _set_content_rows(self, rows: list) -> None:
        cid = self.cid
        for p, n, c in rows:
            cid[p : p + n] = [c] * n

    # ------------------------------------------------------------------ writes
    # the row paths of FileSystem run on this state through _map_shared_rows, _map_rows,
    # _alloc_rows, _cid_rows, _set_content_rows and _splice_ext
    _write_rows = FileSystem._write_rows
    _cow_blocks_rows = FileSystem._cow_blocks_rows
    _alloc_blocks_rows = FileSystem._alloc_blocks_rows

    def _write(
        self,
        ip: BlockInode,
        off: int,
        length: int,
        byte: int,
        ch: FsChange,
        *,
        extend: bool = True,
        store_only: bool = False,
    ) -> None:
        """Write ``length`` bytes of ``byte`` at ``off``: allocate holes, convert unwritten,
        CoW shared blocks (copy-around from the old block), store into private blocks
        (FileSystem's ``_write_rows``)."""
        if length > 0:
            self._write_rows(ip, off, length, byte, ch, extend, store_only)

    def _zero_bytes(self, ip: BlockInode, off: int, length: int, ch: FsChange) -> None:
        """iomap/dax zero range: zero written blocks only (holes and unwritten are skipped),
        CoW if shared; never changes the size."""
        if length <= 0:
            return
        end = off + length
        for f, n, _p, st, _c in self._rows(ip, off // BS, _ceil_blocks(end), False):
            if st == WRITTEN:
                a = max(off, f * BS)
                e = min(end, (f + n) * BS)
                if e > a:
                    self._write(ip, a, e - a, 0, ch, extend=False)

    def store(self, ino: int, off: int, length: int, byte: int) -> None:
        """In-place store into private written blocks (a store through a writable mapping
        after the fault made the blocks private). May go past EOF inside the EOF page."""
        ip = self._ip(ino)
        if length <= 0:
            return
        byte &= 0xFF
        end = off + length
        b0, b1 = off // BS, _ceil_blocks(end)
        rows = self._rows(ip, b0, b1)
        for _f, _n, _p, st, c in rows:
            if st != WRITTEN or c > 1:
                raise FsError("EFAULT", "store into a block that is not a private written block")
        contents = self.contents
        full_cid = contents.uniform(byte)
        head_a = off - b0 * BS
        tail_e = end - (b1 - 1) * BS
        cid = self.cid
        fb0, fb1 = b0, b1
        if head_a > 0 or (b1 - b0 == 1 and tail_e < BS):
            e_ = tail_e if b1 - b0 == 1 else BS
            r = _row_of(b0, rows)
            pb = r[2] + b0 - r[0]
            cid[pb] = contents.overlay(cid[pb], head_a, e_, byte)
            fb0 += 1
        if tail_e < BS and b1 - 1 >= fb0:
            r = _row_of(b1 - 1, rows)
            pb = r[2] + b1 - 1 - r[0]
            cid[pb] = contents.overlay(cid[pb], 0, tail_e, byte)
            fb1 -= 1
        if fb1 > fb0:
            for f, n, p, _st, _c in rows:
                s_ = max(f, fb0)
                e2 = min(f + n, fb1)
                if e2 > s_:
                    cid[p + s_ - f : p + e2 - f] = [full_cid] * (e2 - s_)

    def cow_blocks(self, ino: int, fblock: int, nblocks: int) -> FsChange:
        """Write-fault CoW: shared written blocks in range get new private blocks (full copy,
        via the CoW fork: allocate, convert now, end_cow remap), old references dropped."""
        ip = self._ip(ino)
        ch = FsChange(size_before=ip.size, size_after=ip.size)
        self._cow_blocks_rows(ip, fblock, nblocks, ch)
        return ch

    def alloc_blocks(self, ino: int, fblock: int, nblocks: int) -> FsChange:
        """Write fault on holes/unwritten: allocate zeroed written blocks, convert unwritten
        blocks to written (zeroed, XFS_BMAPI_ZERO for DAX)."""
        ip = self._ip(ino)
        ch = FsChange(size_before=ip.size, size_after=ip.size)
        self._alloc_blocks_rows(ip, fblock, nblocks, ch)
        return ch

    def _unmap(self, ip: BlockInode, b0: int, b1: int | None, ch: FsChange) -> None:
        """Remove data-fork mappings of ``[b0, b1)`` (None = to the end); drop references."""
        if not ip.S:
            return
        if b1 is None:
            b1 = ip.S[-1] + ip.N[-1]
        if b1 <= b0:
            return
        rows = [r for r in self._rows(ip, b0, b1, False) if r[2] >= 0]
        if rows:
            ch.extent_records_touched += self._splice_ext(ip, b0, b1, [])
            ch.remapped.extend(_franges_rows(ip.ino, [(r[0], r[1]) for r in rows]))
            self._refs_list([(r[2], r[1]) for r in rows], -1, ch)

    def truncate(self, ino: int, size: int) -> FsChange:
        """ftruncate (xfs_setattr_size): up zeroes past the old EOF; down zeroes the tail of
        the new EOF block (CoW if shared); down or same size frees every block past EOF."""
        ip = self._ip(ino)
        if size < 0:
            raise FsError("EINVAL", f"negative size {size}")
        if size > MAX_FILE_SIZE:
            raise FsError("EFBIG", f"size {size} past the maximum file size")
        ch = FsChange(size_before=ip.size)
        old = ip.size
        if size > old:
            self._zero_posteof(ip, size, ch)
            ip.size = size
        else:
            if size == 0 and old == 0 and not ip.S:
                ch.size_after = 0
                return ch
            if size % BS and size != old:
                self._zero_bytes(ip, size, BS - size % BS, ch)
            self._unmap(ip, _ceil_blocks(size), None, ch)
            ip.size = size
        ch.size_after = ip.size
        return ch

    def _alloc_unwritten(self, ip: BlockInode, b0: int, b1: int, ch: FsChange) -> None:
        """xfs_alloc_file_space: unwritten extents in the holes of ``[b0, b1)``."""
        rows = self._rows(ip, b0, b1, False)
        holes = [(r[0], r[1]) for r in rows if r[3] == HOLE]
        if not holes:
            return
        goal = None
        if b0 > 0:
            goal = self._goal_after(ip, b0)
        if goal is None:
            goal = next((r[2] for r in rows if r[2] >= 0), None)
        new = self._alloc_rows(holes, goal, ch)
        out = [r[:4] for r in rows if r[3] != HOLE and r[2] >= 0]
        out += [(f, n, p, UNWRITTEN) for f, n, p in new]
        out.sort()
        ch.extent_records_touched += self._splice_ext(ip, b0, b1, out)

    # ------------------------------------------------------------------ remap
    _remap_blocks_rows = FileSystem._remap_blocks_rows

    def _remap_blocks(
        self, src: BlockInode, pos_in: int, dst: BlockInode, pos_out: int, length: int, ch: FsChange
    ) -> None:
        """xfs_reflink_remap_blocks: share written source extents into dest; source holes and
        unwritten extents punch dest (unless both unwritten); same mapping = nothing
        (FileSystem's ``_remap_blocks_rows``)."""
        self._remap_blocks_rows(src, pos_in // BS, dst, pos_out // BS, _ceil_blocks(length), ch)

    # ------------------------------------------------------------------ reads
    def _block_cids(self, ip: BlockInode, b0: int, b1: int) -> list:
        """Content of file blocks ``[b0, b1)``: coalesced rows ``(fblock, n, cid)``
        (holes and unwritten blocks read as zeros)."""
        out: list = []
        cid = self.cid
        for f, n, p, st, _ in self._rows(ip, b0, b1, False):
            if st != WRITTEN:
                cr = ((f, n, ZERO_CID),)
            elif n == 1 or cid[p : p + n].count(cid[p]) == n:  # one content (most rows)
                cr = ((f, n, cid[p]),)
            else:
                cr = [(f + cp - p, cn, c) for cp, cn, c in self._cid_rows(p, n)]
            for r in cr:
                if out and out[-1][2] == r[2]:
                    out[-1] = (out[-1][0], out[-1][1] + r[1], r[2])
                else:
                    out.append(r)
        return out

    _cid_pieces = _block_cids  # what FileSystem's _chunks walks
    _chunks = FileSystem._chunks
    pread = FileSystem.pread

    def md5(self, ino: int, off: int = 0, length: int | None = None) -> str:
        """md5 (hex) of the file (``length`` None: from ``off`` to EOF), or of the raw range
        ``[off, off + length)`` read through the block map with zeros past EOF."""
        ip = self._ip(ino)
        h = hashlib.md5()
        if length is None:
            length = max(ip.size - off, 0)
            it = self._chunks(ip, off, length, clip_eof=True)
        else:
            it = self._chunks(ip, off, length, clip_eof=False)
        for c in it:
            h.update(c)
        return h.hexdigest()

    def _byte_runs_l(self, ip: BlockInode, off: int, length: int):
        """Bytes of ``[off, off+length)`` (clipped at EOF) as coalesced lists ``(lens, vals)``."""
        end = min(off + length, ip.size)
        if end <= off:
            return [], []
        return _cid_byte_runs(
            self._block_cids(ip, off // BS, _ceil_blocks(end)), off, end, self.contents.runs
        )

    def byte_runs(self, ino: int, off: int, length: int):
        """What read(2) of ``[off, off + length)`` returns (clipped at EOF), as coalesced
        constant-byte runs ``(lens, vals)`` (int64 arrays; adjacent runs differ in value)."""
        if off < 0 or length < 0:
            raise FsError("EINVAL", "negative offset or length")
        L, V = self._byte_runs_l(self._ip(ino), off, length)
        if not L:
            return _EMPTY, _EMPTY.copy()
        return np.array(L, dtype=_I64), np.array(V, dtype=_I64)

    def byte_runs_list(self, ino: int, off: int, length: int) -> tuple[list, list]:
        """:meth:`byte_runs` as Python lists ``(lens, vals)``."""
        if off < 0 or length < 0:
            raise FsError("EINVAL", "negative offset or length")
        return self._byte_runs_l(self._ip(ino), off, length)

    def compare(self, ino_a: int, off_a: int, ino_b: int, off_b: int, length: int) -> bool:
        """Whether the two ranges read (clipped at EOF) the same bytes."""
        ipa, ipb = self._ip(ino_a), self._ip(ino_b)
        return self._byte_runs_l(ipa, off_a, length) == self._byte_runs_l(ipb, off_b, length)

    def block_content(self, pblock: int) -> tuple[tuple[int, int, int], ...]:
        """Byte runs ``((off, len, byte), ...)`` held by a physical block."""
        return self.contents.runs(self._cid_of(pblock))

    def block_content_md5(self, pblock: int) -> str:
        """md5 of the 4 KiB a physical block holds."""
        return hashlib.md5(self.contents.data(self._cid_of(pblock))).hexdigest()

    # ------------------------------------------------------------------ checks
    def shared_blocks(self, ino: int) -> tuple[int, int]:
        """``(shared, mapped)`` block counts of a file (``@model_shared_blocks n/m``)."""
        ip = self._ip(ino)
        rc = self.rc
        sh = 0
        for n, p in zip(ip.N, ip.P, strict=True):
            seg = rc[p : p + n]
            sh += n - seg.count(1)
        return sh, sum(ip.N)

    def _problem(self) -> str | None:
        """The first inconsistency of the state (None: consistent): extents sorted, merged
        and on the device; every referenced block's count equals the extents covering it;
        the free runs sorted, maximal, of count 0; referenced + free = the device."""
        n = self.nblocks
        rc = self.rc
        ev: dict[int, int] = {}  # reference count deltas at extent starts and ends
        for ip in self.inodes.values():
            end = pend = pst = None
            for s, ln, p, st in zip(ip.S, ip.N, ip.P, ip.T, strict=True):
                if ln <= 0 or (end is not None and s < end) or st not in (UNWRITTEN, WRITTEN):
                    return f"inode {ip.ino}: extent ({s}, {ln}, {p}, {st}) empty or misplaced"
                if not (0 <= p and p + ln <= n):
                    return f"inode {ip.ino} maps blocks {p}+{ln} outside the device"
                if s == end and p == pend and st == pst:
                    return f"inode {ip.ino}: extent at file block {s} not merged"
                end, pend, pst = s + ln, p + ln, st
                ev[p] = ev.get(p, 0) + 1
                ev[p + ln] = ev.get(p + ln, 0) - 1
        used = 0
        level = 0
        pts = sorted(ev)
        refd: list = []  # referenced ranges, sorted and disjoint
        for a, b in zip(pts, pts[1:], strict=False):
            level += ev[a]
            if level and rc[a:b].count(level) != b - a:
                q = next(i for i in range(a, b) if rc[i] != level)
                return f"refcount of block {q} is {rc[q]}, {level} references"
            if level:
                used += b - a
                refd.append((a, b))
        S, L = self._fs, self._fl
        if sum(L) != self._nfree:
            return f"free runs hold {sum(L)} blocks, free count {self._nfree}"
        if used + self._nfree != n:
            return f"used {used} + free {self._nfree} != {n}"
        if n - rc.count(0) != used:  # (a count on a block no extent references)
            q = next(i for i in range(n) if rc[i] and not any(a <= i < b for a, b in refd))
            return f"refcount of block {q} is {rc[q]}, 0 references"
        end = -1
        j = 0
        nref = len(refd)
        for s, ln in zip(S, L, strict=True):
            if ln <= 0 or s <= end or s + ln > n:
                return f"free run ({s}, {ln}) empty, unsorted, not maximal or off the device"
            while j < nref and refd[j][1] <= s:
                j += 1
            if j < nref and refd[j][0] < s + ln:  # sweep: runs and ranges are both sorted
                return f"a referenced block is on the free list (run {s}+{ln})"
            end = s + ln
        if len(rc) != n:  # (referenced and free runs are disjoint and cover the device)
            return f"{len(rc)} refcounts for {n} blocks"
        return None

    def _invariants_hold_small(self, max_runs: int = 512) -> bool:
        """Whether every assertion of :meth:`check_invariants` holds (a direct recount of
        the references against the refcounts and the free runs)."""
        return self._problem() is None

    def check_invariants(self) -> None:
        """Assert refcount conservation: every block's refcount equals the number of block
        map references; the free runs are exactly the unreferenced blocks."""
        msg = self._problem()
        if msg is not None:
            raise AssertionError(msg)
