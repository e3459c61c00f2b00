"""An XFS-like reflink filesystem on a device of 4 KiB blocks (functional model, no time).

State, all as sorted runs (:mod:`sim.fs.runs`), so memory follows the number of extents and
records, never the device size:

* free space: runs of free physical blocks (an allocator over free extents);
* refcount: runs ``(pstart, n, count)`` for shared blocks only (XFS refcount-btree semantics:
  an allocated block without a record has refcount 1);
* content: runs ``(pstart, n, content id)`` of what each written physical block holds;
* per inode: the data fork ``(fstart, n, pstart, state)`` and a CoW staging fork.

Kernel rules followed (fs/remap_range.c, fs/xfs/xfs_reflink.c, xfs_file.c, xfs_iops.c,
xfs_bmap_util.c) are cited at each operation.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right

import numpy as np

from sim.fs.change import BLOCK_SIZE, HOLE, UNWRITTEN, WRITTEN, Extent, FsChange, FsError
from sim.fs.content import ZERO_CID, ContentStore
from sim.fs.runs import EMPTY, RunMap, merge_list_runs, segments, sweep_deltas

__all__ = [
    "FileSystem",
    "Inode",
    "MAX_FILE_SIZE",
    "DEDUPE_MAX_BYTES",
    "INODE_CHUNK_BLOCKS",
    "metadata_blocks",
]

BS = BLOCK_SIZE
#: s_maxbytes of XFS on 64-bit (MAX_LFS_FILESIZE).
MAX_FILE_SIZE = (1 << 63) - 1
#: vfs_dedupe_file_range caps one request at 1 GiB.
DEDUPE_MAX_BYTES = 1 << 30

_I64 = np.int64
#: Queries over at most this many runs take the pure-Python (list) paths.
_FAST_RUNS = 32
#: Free maps with more runs than this (in numpy form) allocate through numpy.
_FAST_FREE = 256


#: Blocks of the root inode chunk (64 inodes of 512 bytes, XFS_INODES_PER_CHUNK).
INODE_CHUNK_BLOCKS = 8


def metadata_blocks(stripe_unit_blocks: int) -> int:
    """Blocks before the first data block of a fresh filesystem with this stripe unit.

    With a stripe unit mkfs.xfs puts the root inode chunk on the first stripe-unit boundary
    after the AG headers, btree roots and AGFL (``xfs_ialloc_calc_rootino()`` of libxfs, which
    mkfs shares, rounds it up to the stripe unit), and a file's first allocation that is not
    stripe aligned goes near its inode (``xfs_bmap_btalloc()``: ``ap->blkno =
    XFS_INO_TO_FSB()``), right after the chunk (the free space between the AG headers and the
    chunk, which XFS also uses, is not modelled).
    Seen on 6.1 and 7.3 with ``-d su=2m,sw=1``: the first data block is 520 = 512 + 8 and the
    first stripe-aligned one 1024. Without a stripe unit the model keeps no metadata (0).

    Parameters
    ----------
    stripe_unit_blocks : int
        The stripe unit in blocks (0 = none).

    Returns
    -------
    int
    """
    return int(stripe_unit_blocks) + INODE_CHUNK_BLOCKS if stripe_unit_blocks > 0 else 0


def _a(x) -> np.ndarray:
    return np.asarray(x, dtype=_I64)


def _ceil_blocks(nbytes: int) -> int:
    return -(-nbytes // BS)


class Inode:
    """One regular file: size, data fork, CoW fork, reflink flag, link count and users."""

    __slots__ = ("ino", "size", "ext", "cow", "reflink", "nlink", "users")

    def __init__(self, ino: int):
        self.ino = ino
        self.size = 0
        #: data fork: runs of file blocks, columns (pblock [offset], state)
        self.ext = RunMap((True, False))
        #: CoW staging fork: runs of file blocks, column pblock [offset]
        self.cow = RunMap((True,))
        #: XFS_DIFLAG2_REFLINK: set on both sides of a clone
        self.reflink = False
        #: names of the inode (``i_nlink``): 1 while it has its name, 0 once unlinked
        self.nlink = 1
        #: references beside the name (open files, mappings: :meth:`FileSystem.hold`)
        self.users = 0


class FileSystem:
    """A reflink filesystem of ``nblocks`` 4 KiB blocks.

    Parameters
    ----------
    nblocks : int
        Device size in blocks.
    fill_byte : int, optional
        Byte the raw device held before mkfs (``@scratch_dev_fill``); None = zeros.
    stripe_unit_blocks : int, optional
        The stripe unit of ``mkfs.xfs -d su=`` in blocks (0 = none). With one, the first
        :func:`metadata_blocks` blocks hold the AG headers and the root inode chunk, and an
        allocation at EOF of at least a stripe unit is aligned (:meth:`_alloc_eof`).
    """

    def __init__(self, nblocks: int, *, fill_byte: int | None = None, stripe_unit_blocks: int = 0):
        if nblocks <= 0:
            raise FsError("EINVAL", f"device size must be positive, got {nblocks} blocks")
        su = int(stripe_unit_blocks)
        if su < 0:
            raise FsError("EINVAL", f"negative stripe unit ({su} blocks)")
        meta = metadata_blocks(su)
        if meta >= nblocks:
            raise FsError(
                "EINVAL",
                f"a device of {nblocks} blocks has no data block after the first "
                f"{meta} (AG headers and root inode chunk with a stripe unit of {su} blocks)",
            )
        self.nblocks = int(nblocks)
        self.stripe_unit_blocks = su
        #: blocks mkfs keeps before the first data block (:func:`metadata_blocks`)
        self.meta_blocks = meta
        self.fill_byte = fill_byte
        self.contents = ContentStore(BS)
        self.fill_cid = ZERO_CID if not fill_byte else self.contents.uniform(fill_byte)
        self.free = RunMap(())
        self.free.splice(meta, self.nblocks, _a([meta]), _a([self.nblocks - meta]), [])
        self._nfree = self.nblocks - meta
        self.refc = RunMap((False,))
        self.content = RunMap((False,))
        self._init_namespace()
        # md5 of whole files: hash states cached along content-run prefixes (see _md5_file)
        self._md5_chain: dict[tuple[int, int, int], int] = {}
        self._md5_states: dict[tuple[int, int], dict[int, object]] = {}

    def _init_namespace(self) -> None:
        """No file yet: empty inode and name tables, the first inode number, zero counters."""
        self.inodes = {}
        self.names: dict[str, int] = {}
        self._next_ino = 128
        self.blocks_allocated = 0
        self.blocks_freed = 0
        self.refcount_increments = 0
        self.refcount_decrements = 0
        self.cow_blocks_total = 0
        self.cow_bytes_total = 0
        self.cow_fork_allocations = 0
        self.cow_fork_remaps = 0
        self.remap_blocks_total = 0

    # ------------------------------------------------------------------ namespace
    def _check_path(self, path: str) -> None:
        if not path:
            raise FsError("ENOENT", "empty path")
        if path.endswith("/") or path in (".", ".."):
            raise FsError("EISDIR", f"{path} is a directory")

    def create(self, path: str) -> int:
        """Create ``path`` if it does not exist (O_CREAT without O_EXCL); return its inode."""
        return self.open(path, create=True)

    def open(self, path: str, *, create: bool = False, trunc: bool = False) -> int:
        """Open ``path`` (O_CREAT, O_TRUNC as asked); return the inode number."""
        if trunc:
            return self.open_ex(path, create=create, trunc=trunc)[0]
        return self._open_ino(path, create)

    def _open_ino(self, path: str, create: bool) -> int:
        """Inode of ``path``, created when asked (no O_TRUNC)."""
        self._check_path(path)
        ino = self.names.get(path)
        if ino is None:
            if not create:
                raise FsError("ENOENT", f"{path}: no such file")
            ino = self._next_ino
            self._next_ino += 1
            self.inodes[ino] = Inode(ino)
            self.names[path] = ino
        return ino

    def open_ex(
        self, path: str, *, create: bool = False, trunc: bool = False
    ) -> tuple[int, FsChange]:
        """As :meth:`open`, also returning what O_TRUNC did."""
        existed = path in self.names
        ino = self._open_ino(path, create)
        if trunc and existed:
            return ino, self.truncate(ino, 0)
        return ino, FsChange()

    def lookup(self, path: str) -> int:
        """Inode of ``path`` (ENOENT if absent)."""
        ino = self.names.get(path)
        if ino is None:
            raise FsError("ENOENT", f"{path}: no such file")
        return ino

    def exists(self, path: str) -> bool:
        """Whether a file is named ``path``."""
        return path in self.names

    def paths(self) -> list[str]:
        """All file names, sorted."""
        return sorted(self.names)

    def path_of(self, ino: int) -> str | None:
        """A name of inode ``ino`` (None once unlinked)."""
        for p, i in self.names.items():
            if i == ino:
                return p
        return None

    def _ip(self, ino: int) -> Inode:
        ip = self.inodes.get(ino)
        if ip is None:
            raise FsError("ENOENT", f"inode {ino} does not exist")
        return ip

    def size(self, ino: int) -> int:
        """The byte size (EOF) of inode ``ino``."""
        return self._ip(ino).size

    def is_reflink(self, ino: int) -> bool:
        """XFS_DIFLAG2_REFLINK of the inode."""
        return self._ip(ino).reflink

    def unlink(self, path: str) -> FsChange:
        """``unlink(2)``: remove the name ``path``; free the inode now when nothing else
        references it, otherwise keep it as an orphan until its last user goes.

        ``xfs_remove`` (every release) drops the link count to 0 (``xfs_droplink``) and puts
        the inode on the AGI unlinked list (``xfs_iunlink``); its blocks stay allocated. They
        are freed when the VFS drops the last reference (``iput`` -> ``evict`` ->
        ``xfs_fs_destroy_inode`` -> ``xfs_inactive``, deferred to inodegc since 5.15):
        ``xfs_inactive_truncate`` (``xfs_itruncate_extents``) and
        ``xfs_reflink_cancel_cow_range``. A name's dentry is the only reference of a file no
        process holds open or mapped (``do_unlinkat`` -> ``iput`` then frees it at once); an
        open file or a mapping (``vma->vm_file``) keeps the inode (:meth:`hold`) until
        :meth:`release`. Returns what the unlink freed (nothing for an orphan)."""
        ino = self.lookup(path)
        ip = self.inodes[ino]
        del self.names[path]
        ip.nlink = 0
        if ip.users:
            return FsChange(size_before=ip.size, size_after=ip.size)
        return self._inactivate(ip)

    def _inactivate(self, ip: Inode) -> FsChange:
        """``xfs_inactive`` of an unlinked inode: every block reference dropped, CoW staging
        cancelled, the inode freed."""
        ch = FsChange(size_before=ip.size)
        self._unmap(ip, 0, None, ch)
        del self.inodes[ip.ino]
        return ch

    def hold(self, ino: int) -> None:
        """Take a reference on inode ``ino`` beside its name: an open file or a mapping
        (the ``struct file`` an fd or ``vma->vm_file`` holds pins the dentry and the inode)."""
        self._ip(ino).users += 1

    def release(self, ino: int) -> FsChange | None:
        """Drop a reference taken by :meth:`hold` (``fput`` -> ``dput`` -> ``iput``). When it
        was the last one of an unlinked inode, the inode is evicted and freed
        (``iput_final`` -> ``evict`` -> ``xfs_inactive``): returns what that freed; None
        while the inode stays (named, or still referenced)."""
        ip = self._ip(ino)
        if ip.users <= 0:
            raise ValueError(f"inode {ino} has no reference to release")
        ip.users -= 1
        if ip.users or ip.nlink:
            return None
        return self._inactivate(ip)

    def users(self, ino: int) -> int:
        """References :meth:`hold` took on inode ``ino`` and :meth:`release` has not dropped."""
        return self._ip(ino).users

    def orphans(self) -> list[int]:
        """Inodes unlinked but still referenced (open or mapped), sorted."""
        return sorted(i for i, ip in self.inodes.items() if not ip.nlink)

    def fsync(self, ino: int) -> FsChange:
        """fsync/fdatasync: nothing to do in the functional model."""
        self._ip(ino)
        return FsChange()

    def free_blocks(self) -> int:
        """Free device blocks (statfs f_bfree)."""
        return self._nfree

    # ------------------------------------------------------------------ space
    def _alloc(self, n: int, goal: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Allocate ``n`` blocks, contiguous when possible, first fit near ``goal``."""
        if n > self._nfree:
            raise FsError("ENOSPC", f"need {n} blocks, {self._nfree} free")
        out_s: list[int] = []
        out_n: list[int] = []
        fr = self.free
        need = n
        if goal is not None and goal >= 0 and len(fr):
            i = int(fr.start.searchsorted(goal, side="right")) - 1
            if i >= 0 and fr.start[i] + fr.length[i] > goal:
                take = min(need, int(fr.start[i] + fr.length[i] - goal))
                out_s.append(goal)
                out_n.append(take)
                fr.splice(goal, goal + take)
                need -= take
        while need > 0:
            ln = fr.length
            cand = np.flatnonzero(ln >= need)
            if cand.shape[0]:
                i = int(cand[0])
                if goal is not None:
                    after = cand[fr.start[cand] >= goal]
                    if after.shape[0]:
                        i = int(after[0])
                s = int(fr.start[i])
                take = need
            else:
                i = int(np.argmax(ln))
                s = int(fr.start[i])
                take = int(ln[i])
            out_s.append(s)
            out_n.append(take)
            fr.splice(s, s + take)
            need -= take
        self._nfree -= n
        self.blocks_allocated += n
        return _a(out_s), _a(out_n)

    def _free(self, ps: np.ndarray, ns: np.ndarray, ch: FsChange) -> None:
        if ps.shape[0] == 0:
            return
        self.free.assign_many(ps, ns, [])
        k = int(ns.sum())
        self._nfree += k
        self.blocks_freed += k
        ch.blocks_freed += k

    def _alloc_for(
        self, f: np.ndarray, n: np.ndarray, goal: int | None, ch: FsChange, ip=None, cow=False
    ):
        """Allocate physical blocks for file segments ``(f, n)``; return pieces ``(f, n, p)``;
        ``ip``: a data-fork allocation of that inode, ``cow``: a CoW allocation (stripe
        alignment, :meth:`_data_runs`)."""
        total = int(n.sum())
        if total == 0:
            return EMPTY, EMPTY, EMPTY
        pieces = list(zip(f.tolist(), n.tolist(), strict=True)) if self.stripe_unit_blocks else []
        if pieces and (
            (cow and self._cow_aligned(pieces, total))
            or (ip is not None and not cow and self._at_eof(ip, pieces))
        ):
            runs = self._alloc_eof(None if cow else ip, pieces[0][0], total)
            ps, pn = _a([r[0] for r in runs]), _a([r[1] for r in runs])
        else:
            ps, pn = self._alloc(total, goal)
        ch.blocks_allocated += total
        if ps.shape[0] == 1:
            vstart = np.cumsum(n) - n
            return f.copy(), n.copy(), ps[0] + vstart
        pv = np.cumsum(pn) - pn
        sv = np.cumsum(n) - n
        qi, ss, sl, rr = segments(pv, pn, sv, n)
        return f[qi] + (ss - sv[qi]), sl, ps[rr] + (ss - pv[rr])

    def _refs(self, ps: np.ndarray, ns: np.ndarray, delta: int, ch: FsChange) -> None:
        """Add ``delta`` to the refcount of every block of the ranges (ranges may repeat)."""
        if ps.shape[0] == 0:
            return
        if ps.shape[0] <= 16:
            self._refs_list(list(zip(ps.tolist(), ns.tolist(), strict=True)), delta, ch)
            return
        s, ln, d = sweep_deltas(ps, ns, np.full(ps.shape[0], delta, _I64))
        self._refs_apply(s, ln, d, delta, ch)

    def _refs_apply(self, s, ln, d, delta: int, ch: FsChange) -> None:
        """The numpy part of :meth:`_refs` after the deltas are summed."""
        if s.shape[0] == 0:
            return
        k = int((ln * np.abs(d)).sum())
        if delta > 0:
            self.refcount_increments += k
            ch.refcount_increments += k
        else:
            self.refcount_decrements += k
            ch.refcount_decrements += k
        ch.refcount_changes += k
        rc = self.refc
        # cut the changed ranges at refcount records; blocks without a record count 1
        qi, ss, sl, rr = segments(rc.start, rc.length, s, ln)
        if len(rc):
            base = np.where(rr >= 0, rc.cols[0][np.maximum(rr, 0)], 1)
        else:
            base = np.ones(ss.shape[0], _I64)
        newc = base + d[qi]
        if (newc < 0).any():
            raise AssertionError("refcount below zero")
        keep = newc >= 2
        ch.refcount_records_touched += int((rr >= 0).sum()) + int(keep.sum())
        rc.replace_ranges(s, ln, ss[keep], sl[keep], [newc[keep]])
        freed = newc == 0
        if freed.any():
            self._free(ss[freed], sl[freed], ch)

    def refcount(self, pblock: int) -> int:
        """Reference count of a physical block (0 = free); FsError EINVAL outside the device."""
        if not 0 <= pblock < self.nblocks:
            raise FsError("EINVAL", f"block {pblock} outside the device (0..{self.nblocks - 1})")
        r = self.refc.rows(pblock, pblock + 1)
        if r:
            return r[0][2]
        if self.free.rows(pblock, pblock + 1):
            return 0
        return 1

    def _refcounts(self, ps: np.ndarray, ns: np.ndarray):
        """Cut physical ranges by refcount records: ``(qidx, pstart, n, count)``."""
        rc = self.refc
        qi, ss, sl, rr = segments(rc.start, rc.length, ps, ns)
        cnt = np.where(rr >= 0, rc.cols[0][np.maximum(rr, 0)] if len(rc) else 1, 1)
        return qi, ss, sl, cnt

    # ------------------------------------------------------------------ maps
    def _map(self, ip: Inode, b0: int, b1: int):
        """Data fork over ``[b0, b1)``: arrays ``(f, n, p, state)`` with holes (p=-1, HOLE)."""
        e = ip.ext
        if b1 <= b0:
            return EMPTY, EMPTY, EMPTY, EMPTY
        if len(e) == 0:
            return _a([b0]), _a([b1 - b0]), _a([-1]), _a([HOLE])
        qi, ss, sl, rr = segments(e.start, e.length, _a([b0]), _a([b1 - b0]))
        has = rr >= 0
        r = np.maximum(rr, 0)
        p = np.where(has, e.cols[0][r] + (ss - e.start[r]), -1)
        st = np.where(has, e.cols[1][r], HOLE)
        return ss, sl, p, st

    def _map_shared(self, ip: Inode, b0: int, b1: int):
        """As :meth:`_map`, split where the refcount changes: ``(f, n, p, state, count)``."""
        f, n, p, st = self._map(ip, b0, b1)
        m = p >= 0
        if not m.any():
            return f, n, p, st, np.zeros(f.shape[0], _I64)
        idx = np.flatnonzero(m)
        qi, ss, sl, cnt = self._refcounts(p[idx], n[idx])
        q = idx[qi]
        nf = f[q] + (ss - p[q])
        holes = np.flatnonzero(~m)
        of = np.concatenate([nf, f[holes]])
        on = np.concatenate([sl, n[holes]])
        op = np.concatenate([ss, p[holes]])
        ost = np.concatenate([st[q], st[holes]])
        oc = np.concatenate([cnt, np.zeros(holes.shape[0], _I64)])
        if holes.shape[0]:
            o = np.argsort(of, kind="stable")
            of, on, op, ost, oc = of[o], on[o], op[o], ost[o], oc[o]
        return of, on, op, ost, oc

    def bmap_arrays(self, ino: int, fblock: int, nblocks: int = 1):
        """Block map of ``[fblock, fblock + nblocks)`` as arrays ``(f, n, p, state, refcount)``."""
        ip = self._ip(ino)
        if nblocks > 0 and self._small(ip.ext, fblock, fblock + nblocks):
            rows = self._map_shared_rows(ip, fblock, fblock + nblocks)
            return tuple(np.array(c, dtype=_I64) for c in zip(*rows, strict=True))
        return self._map_shared(ip, fblock, fblock + nblocks)

    def shared_rows(self, ino: int, fblock: int, nblocks: int) -> list[tuple[int, int]]:
        """``(fblock, nblocks)`` of the rows of :meth:`bmap_arrays` over the range whose
        refcount is above 1, in file order (no arrays for a small range)."""
        ip = self._ip(ino)
        if nblocks <= 0:
            return []
        if self._small(ip.ext, fblock, fblock + nblocks):
            return [
                (f, n)
                for f, n, _p, _st, c in self._map_shared_rows(ip, fblock, fblock + nblocks)
                if c > 1
            ]
        f, n, _p, _st, c = self._map_shared(ip, fblock, fblock + nblocks)
        sh = c > 1
        return list(zip(f[sh].tolist(), n[sh].tolist(), strict=True))

    def bmap(self, ino: int, fblock: int, nblocks: int = 1) -> list[Extent]:
        """Block map of ``[fblock, fblock + nblocks)``: extents split where sharing changes."""
        ip = self._ip(ino)
        if self._small(ip.ext, fblock, fblock + nblocks):
            return _extents_of_rows(self._map_shared_rows(ip, fblock, fblock + nblocks))
        f, n, p, st, c = self.bmap_arrays(ino, fblock, nblocks)
        sh = c > 1
        if f.shape[0] > 1:
            # merge neighbours with the same state and sharing that continue each other
            join = (
                (st[1:] == st[:-1])
                & (sh[1:] == sh[:-1])
                & (((p[1:] < 0) & (p[:-1] < 0)) | ((p[:-1] >= 0) & (p[:-1] + n[:-1] == p[1:])))
            )
            head = np.ones(f.shape[0], dtype=bool)
            head[1:] = ~join
            idx = np.flatnonzero(head)
            n = np.add.reduceat(n, idx)
            f, p, st, sh = f[idx], p[idx], st[idx], sh[idx]
        return [
            Extent(a, b, c_, d, e)
            for a, b, c_, d, e in zip(
                f.tolist(), p.tolist(), n.tolist(), st.tolist(), sh.tolist(), strict=True
            )
        ]

    def extent_count(self, ino: int) -> int:
        """Number of data-fork records of the inode."""
        return len(self._ip(ino).ext)

    def rmap(self, pblock: int) -> list[tuple[int, int]]:
        """Every ``(ino, fblock)`` of a live inode whose data or CoW fork maps ``pblock``."""
        out: list[tuple[int, int]] = []
        for ino, ip in self.inodes.items():
            for m in (ip.ext, ip.cow):
                k = len(m)
                if not k:
                    continue
                if k <= _FAST_RUNS and m.is_list_form():
                    S, N, P = m.lists()[:3]
                    for i in range(k):
                        if P[i] <= pblock < P[i] + N[i]:
                            out.append((ino, S[i] + (pblock - P[i])))
                    continue
                p0 = m.cols[0]
                hit = np.flatnonzero((p0 <= pblock) & (pblock < p0 + m.length))
                for i in hit:
                    out.append((ino, int(m.start[i] + (pblock - p0[i]))))
        return sorted(set(out))

    def _set_ext(self, ip: Inode, b0: int, b1: int, f, n, p, st, ch: FsChange) -> None:
        """Replace the data fork over ``[b0, b1)`` with runs ``(f, n, p, st)``."""
        ch.extent_records_touched += ip.ext.splice(b0, b1, _a(f), _a(n), [_a(p), _a(st)])

    def _rewrite(self, ip: Inode, b0: int, b1: int, f, n, p, st, ch: FsChange) -> None:
        """Replace the data fork over ``[b0, b1)`` with pieces (any order; p < 0 = hole)."""
        m = p >= 0
        o = np.argsort(f[m], kind="stable")
        self._set_ext(ip, b0, b1, f[m][o], n[m][o], p[m][o], st[m][o], ch)

    def _cids(self, ps: np.ndarray, ns: np.ndarray):
        """Content of physical ranges: ``(qidx, pstart, n, cid)`` (unknown = device fill)."""
        c = self.content
        qi, ss, sl, rr = segments(c.start, c.length, ps, ns)
        cid = np.where(
            rr >= 0, c.cols[0][np.maximum(rr, 0)] if len(c) else self.fill_cid, self.fill_cid
        )
        return qi, ss, sl, cid

    def _cid_of(self, pblock: int) -> int:
        return self._cid_rows(pblock, 1)[0][2]

    def _set_content(self, ps, ns, cids) -> None:
        ps = _a(ps)
        if ps.shape[0]:
            self.content.assign_many(ps, _a(ns), [_a(cids)])

    # ------------------------------------------------------------------ list fast paths
    # Pure-Python versions of the hot helpers for small ranges (a few runs): bisect on the
    # list form of the run maps instead of chains of numpy calls on 1-10 element arrays.
    # Each computes exactly what its numpy counterpart computes (tests/test_fs_perf_equiv.py).

    def _map_rows(self, ip: Inode, b0: int, b1: int) -> list:
        """:meth:`_map` as rows ``(f, n, p, state)`` (holes: p=-1, HOLE)."""
        if b1 <= b0:
            return []
        out = []
        pos = b0
        for s, n, p, st in ip.ext.rows(b0, b1):
            if s > pos:
                out.append((pos, s - pos, -1, HOLE))
            out.append((s, n, p, st))
            pos = s + n
        if pos < b1:
            out.append((pos, b1 - pos, -1, HOLE))
        return out

    def _refcount_rows(self, p0: int, n0: int, out: list, f0: int = 0, st: int = 0) -> None:
        """Append ``(f, n, p, st, count)`` pieces of physical range ``[p0, p0+n0)`` cut by the
        refcount records (no record: count 1); ``f`` follows ``p`` from ``f0``."""
        pos = p0
        e0 = p0 + n0
        for s, n, c in self.refc.rows(p0, e0):
            if s > pos:
                out.append((f0 + pos - p0, s - pos, pos, st, 1))
            out.append((f0 + s - p0, n, s, st, c))
            pos = s + n
        if pos < e0:
            out.append((f0 + pos - p0, e0 - pos, pos, st, 1))

    def _map_shared_rows(self, ip: Inode, b0: int, b1: int) -> list:
        """:meth:`_map_shared` as rows ``(f, n, p, state, count)`` (:meth:`_map_rows` with
        each mapped row cut by :meth:`_refcount_rows`, inlined)."""
        out: list = []
        if b1 <= b0:
            return out
        pos = b0
        rc_rows = self.refc.rows
        for f, n, p, st in ip.ext.rows(b0, b1):
            if f > pos:
                out.append((pos, f - pos, -1, HOLE, 0))
            pos = f + n
            if p < 0:
                out.append((f, n, p, st, 0))
                continue
            q = p
            e0 = p + n
            for s, m, c in rc_rows(p, e0):
                if s > q:
                    out.append((f + q - p, s - q, q, st, 1))
                out.append((f + s - p, m, s, st, c))
                q = s + m
            if q < e0:
                out.append((f + q - p, e0 - q, q, st, 1))
        if pos < b1:
            out.append((pos, b1 - pos, -1, HOLE, 0))
        return out

    def _splice_ext(self, ip: Inode, b0: int, b1: int, rows: list) -> int:
        """Replace the data-fork mapping of file blocks ``[b0, b1)`` by ``rows``
        ``(f, n, p, state)``; the records touched (the one run-map edit of the row paths)."""
        return ip.ext.splice_rows(b0, b1, rows)

    def _goal_after(self, ip: Inode, b: int) -> int | None:
        """Allocation goal after file block ``b - 1``: the physical block following its
        mapping, None for a hole."""
        r = ip.ext.rows(b - 1, b)
        if r and r[0][2] >= 0:
            return r[0][2] + 1
        return None

    def _small(self, m: RunMap, lo: int, hi: int) -> bool:
        """Whether ``[lo, hi)`` of run map ``m`` is a small query (list fast path)."""
        if len(m) <= _FAST_RUNS:
            return True
        i0, i1 = m.window(lo, hi)
        return i1 - i0 <= _FAST_RUNS

    def iomap(self, ino: int, fblock: int, nblocks: int) -> tuple[int, int, int, bool]:
        """The iomap at ``fblock``: ``(state, pblock, nblocks, shared)`` of the longest prefix
        of ``[fblock, fblock + nblocks)`` with one state, one shared flag and (written)
        physically contiguous blocks; ``pblock`` -1 for a hole. Stops at the 512-block
        window boundary (what a walk of :meth:`bmap` over that window gives)."""
        ip = self._ip(ino)
        if nblocks == 1:  # one block (a PTE fault)
            return self._iomap_one(ip, fblock)
        end = min(fblock + nblocks, (fblock | 511) + 1)
        state = pb = -1
        length = 0
        shared = False
        for _f, n, p, st, c in self._map_shared_rows(ip, fblock, end):
            sh = c > 1
            if state < 0:
                state, pb, shared, length = st, p, sh, n
                continue
            if st != state or sh != shared:
                break
            if state == WRITTEN and p != pb + length:
                break
            length += n
        if state < 0:
            return HOLE, -1, nblocks, False
        return state, pb, length, shared

    def _iomap_one(self, ip: Inode, fblock: int) -> tuple[int, int, int, bool]:
        """:meth:`iomap` of one block: its extent row and its refcount."""
        r = ip.ext.rows(fblock, fblock + 1)
        if not r:
            return HOLE, -1, 1, False
        p = r[0][2]
        rc = self.refc.rows(p, p + 1) if p >= 0 else None
        return r[0][3], p, 1, bool(rc) and rc[0][2] > 1

    def _cid_rows(self, p0: int, n0: int) -> list:
        """Content of physical range ``[p0, p0+n0)``: rows ``(p, n, cid)`` (gaps: fill)."""
        out = []
        pos = p0
        e0 = p0 + n0
        fill = self.fill_cid
        for s, n, c in self.content.rows(p0, e0):
            if s > pos:
                out.append((pos, s - pos, fill))
            out.append((s, n, c))
            pos = s + n
        if pos < e0:
            out.append((pos, e0 - pos, fill))
        return out

    def _free_lists(self) -> tuple[list, list]:
        """The free runs as sorted lists ``(starts, lengths)``."""
        return self.free.lists()

    def _take_free(self, i: int, s: int, n: int) -> None:
        """Allocate ``[s, s + n)`` from free run ``i`` (which holds it)."""
        self.free.splice_rows(s, s + n, [])

    def _alloc_l(self, n: int, goal: int | None) -> list:
        """:meth:`_alloc` on the list form of the free map: ``[(pstart, n), ...]``."""
        if n > self._nfree:
            raise FsError("ENOSPC", f"need {n} blocks, {self._nfree} free")
        out: list = []
        need = n
        S, L = self._free_lists()
        if goal is not None and goal >= 0 and S:
            i = bisect_right(S, goal) - 1
            if i >= 0 and S[i] + L[i] > goal:
                take = min(need, S[i] + L[i] - goal)
                out.append((goal, take))
                self._take_free(i, goal, take)
                need -= take
        while need > 0:
            S, L = self._free_lists()
            i = -1
            if goal is not None:
                for j in range(bisect_left(S, goal), len(L)):
                    if L[j] >= need:
                        i = j
                        break
            if i < 0:
                for j in range(len(L)):
                    if L[j] >= need:
                        i = j
                        break
            if i >= 0:
                take = need
            else:
                i = L.index(max(L))
                take = L[i]
            s = S[i]
            out.append((s, take))
            self._take_free(i, s, take)
            need -= take
        self._nfree -= n
        self.blocks_allocated += n
        return out

    def _alloc_runs(self, n: int, goal: int | None) -> list:
        """Allocate ``n`` blocks near ``goal``: the physical runs ``[(pstart, n), ...]``
        (:meth:`_alloc_l` on a short free map, :meth:`_alloc` on a long one)."""
        if len(self.free) > _FAST_FREE and not self.free.is_list_form():
            ps, pn = self._alloc(n, goal)
            return list(zip(ps.tolist(), pn.tolist(), strict=True))
        return self._alloc_l(n, goal)

    def _at_eof(self, ip: Inode, pieces: list) -> bool:
        """Whether allocating file ``pieces`` ``[(f, n)]`` is an allocation at EOF of at least
        a stripe unit: one range, at or past the end of the last extent (or an empty data
        fork), ``n >= stripe unit``. ``xfs_bmap_alloc_userdata()`` calls
        ``xfs_bmap_isaeof()`` only when ``bma->length >= mp->m_dalign``, which sets
        ``bma->aeof`` for an empty fork or an offset at or past the last extent's end (6.1,
        6.12, 7.3 alike)."""
        su = self.stripe_unit_blocks
        if su <= 0 or len(pieces) != 1 or pieces[0][1] < su:
            return False
        return not len(ip.ext) or pieces[0][0] >= _last_end(ip.ext)

    def _free_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The free runs as arrays ``(starts, lengths)``."""
        if self.free.is_list_form():
            S, L = self._free_lists()
            return np.asarray(S, dtype=_I64), np.asarray(L, dtype=_I64)
        return self.free.start, self.free.length

    def _take_run(self, s: int, n: int) -> None:
        """Allocate free blocks ``[s, s + n)`` (all free)."""
        self.free.splice_rows(s, s + n, [])
        self._nfree -= n
        self.blocks_allocated += n

    def _alloc_eof(self, ip: Inode | None, fb: int, n: int) -> list:
        """Allocate ``n`` blocks for file blocks ``[fb, fb + n)`` at EOF (:meth:`_at_eof`) of
        ``ip``'s data fork, or (``ip`` None) of an empty CoW fork (:meth:`_cow_aligned`): the
        physical runs ``[(pstart, n), ...]``, stripe aligned where XFS aligns them.

        One extent per ``xfs_bmapi_write()`` call, the rest of the range by the next call
        (the iomap loop), each by ``xfs_bmap_btalloc()`` (6.1, 6.12) /
        ``xfs_bmap_btalloc_best_length()`` + ``xfs_bmap_btalloc_at_eof()`` (6.3+, 7.3):

        * ``minlen`` from the longest free extent ``blen`` (``xfs_bmap_select_minlen()``:
          ``min(blen, n)``);
        * at file offset 0, or with no extent before (7.3: ``xfs_bmap_adjacent()`` leaves
          ``ap->eof`` false; 6.1/6.12 first try the exact block of the inode, which its
          chunk always holds): a stripe-aligned extent (``args.alignment = stripe_align``),
          ``minlen = blen - su`` when ``su < blen <= n + su``;
        * else first the exact block after the previous extent plus the gap
          (``xfs_bmap_adjacent()``; ``XFS_ALLOCTYPE_THIS_BNO`` / ``xfs_alloc_vextent_exact_bno()``),
          then stripe aligned with ``minlen = blen - su`` when ``su < blen <= n``;
        * no aligned extent: unaligned near the same goal (``args.alignment = 0`` in 6.1,
          ``1`` from 6.3), here :meth:`_alloc_runs`.

        The aligned extent is the lowest free one that holds ``n`` aligned blocks, else the
        longest aligned piece of at least ``minlen`` (``xfs_alloc_ag_vextent_near()`` keeps
        the longest candidate up to ``maxlen``, then the one nearest the target: the inode,
        before every data block here). A remainder shorter than a stripe unit is no longer
        ``aeof`` and goes near the end of the extent just allocated.
        """
        su = self.stripe_unit_blocks
        if n > self._nfree:
            raise FsError("ENOSPC", f"need {n} blocks, {self._nfree} free")
        last = None
        if ip is not None and len(ip.ext):
            le = _last_end(ip.ext)
            last = ip.ext.rows(le - 1, le)[0]
        goal = None
        if last is not None and last[2] >= 0:
            goal = last[2] + last[1] + (fb - (last[0] + last[1]))
            if not 0 <= goal < self.nblocks:
                goal = last[2] + last[1]
        out: list = []
        while n > 0:
            if n < su:
                out += self._alloc_runs(n, goal)
                break
            S, L = self._free_arrays()
            blen = int(L.max())
            minlen = min(blen, n)
            got = None
            if fb > 0 and goal is not None:
                i = int(S.searchsorted(goal, side="right")) - 1
                if i >= 0 and S[i] + L[i] > goal and S[i] + L[i] - goal >= minlen:
                    got = (goal, min(n, int(S[i] + L[i] - goal)))
                elif su < blen <= n:
                    minlen = blen - su
            elif su < blen <= n + su:
                minlen = blen - su
            if got is None:
                a = -(-S // su) * su
                avail = S + L - a
                ok = np.flatnonzero(avail >= n)
                if ok.shape[0]:
                    got = (int(a[ok[0]]), n)
                else:
                    ok = np.flatnonzero(avail >= max(minlen, 1))
                    if ok.shape[0]:
                        j = int(ok[np.argmax(avail[ok])])
                        got = (int(a[j]), int(avail[j]))
            if got is None:
                out += self._alloc_runs(n, goal)
                break
            self._take_run(*got)
            out.append(got)
            fb += got[1]
            n -= got[1]
            goal = got[0] + got[1]
        return out

    def _cow_aligned(self, pieces: list, total: int) -> bool:
        """Whether a CoW allocation for file ``pieces`` is stripe aligned: one file range of
        at least a stripe unit. The CoW fork is empty when a CoW starts here (staged and
        remapped at once), so ``xfs_bmap_isaeof()`` on it sets ``aeof`` and, with no extent
        before (7.3) or the inode's own block taken (6.1, 6.12), the allocation is aligned
        (``xfs_reflink_allocate_cow()`` -> ``xfs_bmapi_write(XFS_BMAPI_COWFORK)``)."""
        su = self.stripe_unit_blocks
        if su <= 0 or total < su:
            return False
        end = pieces[0][0]
        for f, n in pieces:
            if f != end:
                return False
            end = f + n
        return True

    def _data_runs(
        self, ip: Inode | None, pieces: list, total: int, goal: int | None, cow: bool = False
    ) -> list:
        """Physical runs for file ``pieces`` of ``ip``: :meth:`_alloc_eof` for a data-fork
        allocation at EOF of at least a stripe unit, or a CoW of one (``cow``), else
        :meth:`_alloc_runs` near ``goal``."""
        if cow and self._cow_aligned(pieces, total):
            return self._alloc_eof(None, pieces[0][0], total)
        if ip is not None and not cow and self._at_eof(ip, pieces):
            return self._alloc_eof(ip, pieces[0][0], total)
        return self._alloc_runs(total, goal)

    def _alloc_rows(
        self, pieces: list, goal: int | None, ch: FsChange, ip=None, cow: bool = False
    ) -> list:
        """:meth:`_alloc_for` on rows: file pieces ``(f, n)`` -> ``(f, n, p)``; ``ip``: a
        data-fork allocation of that inode, ``cow``: a CoW allocation (stripe alignment,
        :meth:`_data_runs`)."""
        total = sum(n for _, n in pieces)
        if total == 0:
            return []
        runs = self._data_runs(ip, pieces, total, goal, cow)
        ch.blocks_allocated += total
        if len(runs) == 1 and len(pieces) == 1:
            return [(pieces[0][0], total, runs[0][0])]
        out = []
        ri = 0
        rs, rn = runs[0]
        for f, n in pieces:
            while n > 0:
                take = min(n, rn)
                out.append((f, take, rs))
                f += take
                n -= take
                rs += take
                rn -= take
                if rn == 0 and ri + 1 < len(runs):
                    ri += 1
                    rs, rn = runs[ri]
        return out

    def _free_rows(self, rows: list, ch: FsChange) -> None:
        """:meth:`_free` of ``(p, n)`` rows."""
        if not rows:
            return
        self.free.replace_rows(rows, rows)
        k = sum(n for _, n in rows)
        self._nfree += k
        self.blocks_freed += k
        ch.blocks_freed += k

    def _refs_list(self, ranges: list, delta: int, ch: FsChange) -> None:
        """:meth:`_refs` of ``(p, n)`` ranges: the list path when the refcount records over
        them are few, else the numpy path."""
        if not ranges:
            return
        lo = min(p for p, _ in ranges)
        hi = max(p + n for p, n in ranges)
        if len(ranges) <= 16 and self._small(self.refc, lo, hi):
            self._refs_rows(ranges, delta, ch)
            return
        ps = np.array([p for p, _ in ranges], dtype=_I64)
        ns = np.array([n for _, n in ranges], dtype=_I64)
        s, ln, d = sweep_deltas(ps, ns, np.full(ps.shape[0], delta, _I64))
        self._refs_apply(s, ln, d, delta, ch)

    def _refs_rows(self, ranges: list, delta: int, ch: FsChange) -> None:
        """:meth:`_refs` of ``(p, n)`` ranges (may repeat or overlap)."""
        if not ranges:
            return
        runs = _delta_runs(ranges, delta)
        if not runs:
            return
        if len(runs) == 1:
            k = runs[0][1] * abs(runs[0][2])
            clear = [runs[0][:2]]
        else:
            k = sum(n * abs(d) for _, n, d in runs)
            clear = [(s, n) for s, n, _ in runs]
        if delta > 0:
            self.refcount_increments += k
            ch.refcount_increments += k
        else:
            self.refcount_decrements += k
            ch.refcount_decrements += k
        ch.refcount_changes += k
        rc = self.refc
        keep = []
        freed = []
        had = 0
        for s0, n0, d in runs:
            pos = s0
            e0 = s0 + n0
            for s, n, c in rc.rows(s0, e0):
                if s > pos:
                    nc = 1 + d
                    if nc < 0:
                        raise AssertionError("refcount below zero")
                    if nc >= 2:
                        keep.append((pos, s - pos, nc))
                    elif nc == 0:
                        freed.append((pos, s - pos))
                nc = c + d
                had += 1
                if nc < 0:
                    raise AssertionError("refcount below zero")
                if nc >= 2:
                    keep.append((s, n, nc))
                elif nc == 0:
                    freed.append((s, n))
                pos = s + n
            if pos < e0:
                nc = 1 + d
                if nc < 0:
                    raise AssertionError("refcount below zero")
                if nc >= 2:
                    keep.append((pos, e0 - pos, nc))
                elif nc == 0:
                    freed.append((pos, e0 - pos))
        ch.refcount_records_touched += had + len(keep)
        rc.replace_rows(clear, keep)
        if freed:
            self._free_rows(freed, ch)

    def _set_content_rows(self, rows: list) -> None:
        if rows:
            self.content.replace_rows([(p, n) for p, n, _ in rows], rows)

    def _write_rows(
        self,
        ip: Inode,
        off: int,
        length: int,
        byte: int,
        ch: FsChange,
        extend: bool,
        store_only: bool,
    ) -> None:
        """:meth:`_write` on rows (see there)."""
        end = off + length
        b0, b1 = off // BS, _ceil_blocks(end)
        rows = self._map_shared_rows(ip, b0, b1)
        any_new = any_shared = any_unw = not_written = False
        kept = []
        newp = []
        for f, n, p, st, c in rows:
            if st == WRITTEN:
                if c > 1:
                    any_new = any_shared = True
                    newp.append((f, n))
                else:
                    kept.append((f, n, p))
            else:
                not_written = True
                if st == HOLE:
                    any_new = True
                    newp.append((f, n))
                else:
                    any_unw = True
                    kept.append((f, n, p))
        if store_only and (any_new or not_written):
            raise FsError("EFAULT", "store into a block that is not a private written block")
        goal = None
        if any_new:
            if b0 > 0:
                goal = self._goal_after(ip, b0)
            if goal is None and kept:
                goal = kept[0][2]
        if newp:
            cow = any_shared and not any(r[3] == HOLE for r in rows)  # a CoW, no hole
            out = kept + self._alloc_rows(newp, goal, ch, ip, cow)
            out.sort()
        else:  # an overwrite of private blocks: nothing allocated, kept is in file order
            out = kept
        if any_shared:
            ncow = sum(r[1] for r in rows if r[3] == WRITTEN and r[4] > 1)
            ch.cow_blocks += ncow
            self.cow_blocks_total += ncow
            self.cow_fork_allocations += ncow
            self.cow_fork_remaps += ncow
        head_a = off - b0 * BS
        tail_e = end - (b1 - 1) * BS
        contents = self.contents
        full_cid = contents.uniform(byte)
        row_of = _row_of
        partial = []
        if head_a > 0 or (b1 - b0 == 1 and tail_e < BS):
            partial.append(b0)
        if tail_e < BS and (b1 - 1) not in partial:
            partial.append(b1 - 1)
        cs = []
        for fb in partial:
            a = head_a if fb == b0 else 0
            e_ = tail_e if fb == b1 - 1 else BS
            f, n, p, st, c = row_of(fb, rows)
            oc = ZERO_CID if st != WRITTEN else self._cid_rows(p + fb - f, 1)[0][2]
            of, _, op_ = row_of(fb, out)
            dst_b = op_ + fb - of
            cs.append((dst_b, 1, contents.overlay(oc, a, e_, byte)))
            if st == WRITTEN and c > 1:
                self._copy_around(ch, (p + fb - f) * BS, dst_b * BS, a, e_)
        fb0 = b0 + (1 if b0 in partial else 0)
        fb1 = b1 - (1 if (b1 - 1) in partial and b1 - 1 >= fb0 else 0)
        if fb1 > fb0:
            for f, n, p in out:
                s_ = max(f, fb0)
                e2 = min(f + n, fb1)
                if e2 > s_:
                    cs.append((p + s_ - f, e2 - s_, full_cid))
        self._set_content_rows(cs)
        if not store_only and not_written:
            for f, n, _p, st, _c in rows:
                if st == WRITTEN:
                    continue
                e0 = f + n
                for of, on, op_ in out:
                    s_ = max(of, f)
                    e2 = min(of + on, e0)
                    if e2 > s_:
                        ch.blocks_zeroed += e2 - s_
                        ch.pmem_write.append(((op_ + s_ - of) * BS, (e2 - s_) * BS))
        for a, b, c in out:
            s0 = max(off, a * BS)
            e0 = min(end, (a + b) * BS)
            if e0 > s0:
                ch.pmem_write.append((c * BS + (s0 - a * BS), e0 - s0))
        if any_new or any_unw:
            ch.extent_records_touched += self._splice_ext(
                ip, b0, b1, [(f, n, p, WRITTEN) for f, n, p in out]
            )
            ch.newly_mapped.extend(
                _franges_rows(ip.ino, [(r[0], r[1]) for r in rows if r[3] != WRITTEN])
            )
        if any_shared:
            sh = [r for r in rows if r[3] == WRITTEN and r[4] > 1]
            ch.remapped.extend(_franges_rows(ip.ino, [(r[0], r[1]) for r in sh]))
            self._refs_list([(r[2], r[1]) for r in sh], -1, ch)
        if extend and end > ip.size:
            ip.size = end

    def _cow_blocks_rows(self, ip: Inode, fblock: int, nblocks: int, ch: FsChange) -> None:
        """:meth:`cow_blocks` on rows (CoW fork empty: staged and remapped at once)."""
        rows = self._map_shared_rows(ip, fblock, fblock + nblocks)
        sh = [r for r in rows if r[3] == WRITTEN and r[4] > 1]
        if not sh:
            return
        new = self._alloc_rows([(r[0], r[1]) for r in sh], None, ch, cow=True)
        ncow = sum(r[1] for r in sh)
        self.cow_fork_allocations += ncow
        # full-block copy of the content, source pieces cut at content runs then at the
        # new allocation pieces
        cs = []
        for f, n, p, _st, _c in sh:
            for cp, cn, cid in self._cid_rows(p, n):
                sf = f + cp - p
                se = sf + cn
                for nf, nn, npp in new:
                    s_ = max(nf, sf)
                    e_ = min(nf + nn, se)
                    if e_ > s_:
                        cs.append((npp + s_ - nf, e_ - s_, cid))
        self._set_content_rows(cs)
        ch.cow_blocks += ncow
        ch.cow_bytes += ncow * BS
        self.cow_blocks_total += ncow
        self.cow_bytes_total += ncow * BS
        ch.pmem_read.extend((r[2] * BS, r[1] * BS) for r in sh)
        ch.pmem_write.extend((p * BS, n * BS) for _, n, p in new)
        out = [
            (r[0], r[1], r[2], r[3])
            for r in rows
            if r[2] >= 0 and not (r[3] == WRITTEN and r[4] > 1)
        ]
        out += [(f, n, p, WRITTEN) for f, n, p in new]
        out.sort()
        ch.extent_records_touched += self._splice_ext(ip, fblock, fblock + nblocks, out)
        self.cow_fork_remaps += ncow
        ch.remapped.extend(_franges_rows(ip.ino, [(r[0], r[1]) for r in sh]))
        self._refs_list([(r[2], r[1]) for r in sh], -1, ch)

    def _alloc_blocks_rows(self, ip: Inode, fblock: int, nblocks: int, ch: FsChange) -> None:
        """:meth:`alloc_blocks` on rows."""
        rows = self._map_rows(ip, fblock, fblock + nblocks)
        holes = [(f, n) for f, n, p, st in rows if st == HOLE]
        unw = [(f, n, p) for f, n, p, st in rows if st == UNWRITTEN]
        if not holes and not unw:
            return
        goal = None
        if fblock > 0:
            goal = self._goal_after(ip, fblock)
        new = self._alloc_rows(holes, goal, ch, ip)
        out = [
            (f, n, p, WRITTEN if st == UNWRITTEN else st)
            for f, n, p, st in rows
            if st != HOLE and p >= 0
        ]
        out += [(f, n, p, WRITTEN) for f, n, p in new]
        out.sort()
        ch.extent_records_touched += self._splice_ext(ip, fblock, fblock + nblocks, out)
        z = [(p, n) for _, n, p in new] + [(p, n) for _, n, p in unw]
        self._set_content_rows([(p, n, ZERO_CID) for p, n in z])
        ch.blocks_zeroed += sum(n for _, n in z)
        ch.pmem_write.extend((p * BS, n * BS) for p, n in z)
        ch.newly_mapped.extend(
            _franges_rows(ip.ino, [(f, n) for f, n, p, st in rows if st != WRITTEN])
        )

    # ------------------------------------------------------------------ unmapping
    def _unmap(self, ip: Inode, b0: int, b1: int | None, ch: FsChange) -> None:
        """Remove data-fork mappings of ``[b0, b1)`` (None = to the end); drop references."""
        e = ip.ext
        if b1 is None:
            b1 = _last_end(e) if len(e) else b0
            if len(ip.cow):
                b1 = max(b1, _last_end(ip.cow))
        if b1 <= b0:
            return
        if not len(ip.cow) and self._small(e, b0, b1):
            rows = e.rows(b0, b1)
            if rows:
                ch.extent_records_touched += e.splice_rows(b0, b1, [])
                ch.remapped.extend(_franges_rows(ip.ino, [(r[0], r[1]) for r in rows]))
                self._refs_list([(r[2], r[1]) for r in rows], -1, ch)
            return
        s, n, cols = e.get(b0, b1)
        if s.shape[0]:
            ch.extent_records_touched += e.splice(b0, b1)
            ch.remapped.extend(_franges(ip.ino, s, n))
            self._refs(cols[0], n, -1, ch)
        # cancel CoW staging extents in the range (xfs_reflink_cancel_cow_range)
        cs, cn, ccols = ip.cow.get(b0, b1)
        if cs.shape[0]:
            ip.cow.splice(b0, b1)
            self._free(ccols[0], cn, ch)

    # ------------------------------------------------------------------ writes
    def _write(
        self,
        ip: Inode,
        off: int,
        length: int,
        byte: int,
        ch: FsChange,
        *,
        extend: bool = True,
        store_only: bool = False,
    ) -> None:
        """Write ``length`` bytes of ``byte`` at ``off``: allocate holes, convert unwritten,
        CoW shared blocks (copy-around from the old block), store into private blocks."""
        if length <= 0:
            return
        end = off + length
        b0, b1 = off // BS, _ceil_blocks(end)
        if self._small(ip.ext, b0, b1):
            self._write_rows(ip, off, length, byte, ch, extend, store_only)
            return
        f, n, p, st, cnt = self._map_shared(ip, b0, b1)
        shared = (st == WRITTEN) & (cnt > 1)
        new = (st == HOLE) | shared
        if store_only and (new.any() or (st != WRITTEN).any()):
            raise FsError("EFAULT", "store into a block that is not a private written block")
        # previous physical block for the allocation goal
        goal = None
        if new.any():
            if b0 > 0:
                pf, _, pp, _ = self._map(ip, b0 - 1, b0)
                if pp[0] >= 0:
                    goal = int(pp[0]) + 1
            if goal is None:
                mapped = p[~new]
                if mapped.shape[0]:
                    goal = int(mapped[0])
        nf, nn, np_ = self._alloc_for(
            f[new], n[new], goal, ch, ip, bool(shared.any() and not (st == HOLE).any())
        )
        # final mapping: old runs that stay + new pieces
        keep = ~new
        out_f = np.concatenate([f[keep], nf])
        out_n = np.concatenate([n[keep], nn])
        out_p = np.concatenate([p[keep], np_])
        if shared.any():
            # CoW: the new blocks go through the CoW fork (allocated and converted at once
            # for DAX), then end_cow remaps them into the data fork below
            ncow = int(n[shared].sum())
            ch.cow_blocks += ncow
            self.cow_blocks_total += ncow
            self.cow_fork_allocations += ncow
            self.cow_fork_remaps += ncow
        o = np.argsort(out_f, kind="stable")
        out_f, out_n, out_p = out_f[o], out_n[o], out_p[o]
        # content of each block in [b0, b1): head / tail may be partial
        head_a = off - b0 * BS
        tail_e = end - (b1 - 1) * BS
        full_cid = self.contents.uniform(byte)
        cs_p, cs_n, cs_c = [], [], []

        def old_cid_of(fb: int) -> int:
            # the block's old content: from the old physical block if written, else zeros
            i = int(f.searchsorted(fb, side="right")) - 1
            if st[i] != WRITTEN:
                return ZERO_CID
            return self._cid_of(int(p[i] + (fb - f[i])))

        def new_p_of(fb: int) -> int:
            i = int(out_f.searchsorted(fb, side="right")) - 1
            return int(out_p[i] + (fb - out_f[i]))

        partial = set()
        if head_a > 0 or (b1 - b0 == 1 and tail_e < BS):
            partial.add(b0)
        if tail_e < BS:
            partial.add(b1 - 1)
        for fb in sorted(partial):
            a = head_a if fb == b0 else 0
            e_ = tail_e if fb == b1 - 1 else BS
            oc = old_cid_of(fb)
            cs_p.append(new_p_of(fb))
            cs_n.append(1)
            cs_c.append(self.contents.overlay(oc, a, e_, byte))
            i = int(f.searchsorted(fb, side="right")) - 1
            if shared[i]:
                # copy-around: the unwritten head/tail of the block from the old block
                self._copy_around(ch, int(p[i] + fb - f[i]) * BS, new_p_of(fb) * BS, a, e_)
        # full blocks: every run of out mapping clipped to the non-partial blocks
        fb0 = b0 + (1 if b0 in partial else 0)
        fb1 = b1 - (1 if (b1 - 1) in partial and b1 - 1 >= fb0 else 0)
        if fb1 > fb0:
            s_ = np.maximum(out_f, fb0)
            e2 = np.minimum(out_f + out_n, fb1)
            ok = e2 > s_
            cs_p.extend((out_p[ok] + (s_[ok] - out_f[ok])).tolist())
            cs_n.extend((e2[ok] - s_[ok]).tolist())
            cs_c.extend([full_cid] * int(ok.sum()))
        self._set_content(cs_p, cs_n, cs_c)
        # DAX allocations and unwritten conversions are zeroed whole (XFS_BMAPI_ZERO)
        if not store_only:
            z = (st == HOLE) | (st == UNWRITTEN)
            if z.any():
                zf, zn = f[z], n[z]
                qz, sz, lz, rz = segments(out_f, out_n, zf, zn)
                zp = out_p[rz] + (sz - out_f[rz])
                ch.blocks_zeroed += int(lz.sum())
                ch.pmem_write.extend(
                    (int(a) * BS, int(b) * BS) for a, b in zip(zp, lz, strict=False)
                )
        # data stored: the written bytes, located through the final mapping
        for a, b, c in zip(out_f.tolist(), out_n.tolist(), out_p.tolist(), strict=False):
            s0 = max(off, a * BS)
            e0 = min(end, (a + b) * BS)
            if e0 > s0:
                ch.pmem_write.append((c * BS + (s0 - a * BS), e0 - s0))
        # data fork
        if new.any() or (st == UNWRITTEN).any():
            out_st = np.full(out_f.shape[0], WRITTEN, _I64)
            self._set_ext(ip, b0, b1, out_f, out_n, out_p, out_st, ch)
            nm = (st == HOLE) | (st == UNWRITTEN)
            ch.newly_mapped.extend(_franges(ip.ino, f[nm], n[nm]))
        if shared.any():
            ch.remapped.extend(_franges(ip.ino, f[shared], n[shared]))
            self._refs(p[shared], n[shared], -1, ch)
        if extend and end > ip.size:
            ip.size = end

    def _zero_posteof(self, ip: Inode, upto: int, ch: FsChange) -> None:
        """Zero the old EOF block past EOF before the size grows (iomap_zero_range from
        isize). Only done when those bytes are not already zero (see the report)."""
        sz = ip.size
        if sz % BS == 0:
            return
        b = sz // BS
        _, _, p0, st0 = self._map_rows(ip, b, b + 1)[0]
        if st0 != WRITTEN:
            return
        stop = min(upto, (b + 1) * BS)
        if stop <= sz:
            return
        if self.contents.is_zero(self._cid_of(p0), sz - b * BS, stop - b * BS):
            return
        self._write(ip, sz, stop - sz, 0, ch, extend=False)

    def _zero_bytes(self, ip: Inode, off: int, length: int, ch: FsChange) -> None:
        """iomap/dax zero range: zero written blocks only (holes and unwritten are skipped),
        CoW if shared; never changes the size."""
        if length <= 0:
            return
        end = off + length
        b0, b1 = off // BS, _ceil_blocks(end)
        if self._small(ip.ext, b0, b1):
            for f, n, _p, st in self._map_rows(ip, b0, b1):
                if st == WRITTEN:
                    a = max(off, f * BS)
                    e = min(end, (f + n) * BS)
                    if e > a:
                        self._write(ip, a, e - a, 0, ch, extend=False)
            return
        f, n, p, st = self._map(ip, b0, b1)
        for i in np.flatnonzero(st == WRITTEN):
            a = max(off, int(f[i]) * BS)
            e = min(end, int(f[i] + n[i]) * BS)
            if e > a:
                self._write(ip, a, e - a, 0, ch, extend=False)

    def _check_range(self, off: int, length: int) -> None:
        if off < 0 or length < 0:
            raise FsError("EINVAL", f"negative offset or length ({off}, {length})")
        if off + length > MAX_FILE_SIZE:
            raise FsError("EFBIG", f"range ends past the maximum file size ({off}+{length})")

    def pwrite(
        self, ino: int, off: int, length: int, byte: int, *, buffer_bytes: int | None = None
    ) -> FsChange:
        """write(2) of ``length`` bytes of ``byte`` at ``off`` (extends EOF).

        ``buffer_bytes``: the write is a sequence of write(2) calls of that many bytes (xfs_io
        ``pwrite -b``), which matters only to where a stripe-unit filesystem allocates
        (:meth:`_alloc_eof` sees each call's length); None = one call.
        """
        ip = self._ip(ino)
        self._check_range(off, length)
        ch = FsChange(size_before=ip.size)
        if length > 0:
            if off > ip.size:
                self._zero_posteof(ip, off, ch)
            b = length if buffer_bytes is None or buffer_bytes <= 0 else int(buffer_bytes)
            if self.stripe_unit_blocks <= 0 or b >= length:
                self._write(ip, off, length, byte & 0xFF, ch)
            else:
                end = off + length
                for o in range(off, end, b):
                    try:
                        self._write(ip, o, min(b, end - o), byte & 0xFF, ch)
                    except FsError as exc:  # xfs_io stops at the failing write(2)
                        if o > off:
                            ch.size_after = ip.size
                            exc.partial = ch
                        raise
        ch.size_after = ip.size
        return ch

    def store(self, ino: int, off: int, length: int, byte: int) -> None:
        """In-place store into private written blocks (a store through a writable mapping
        after the fault made the blocks private). May go past EOF inside the EOF page."""
        ip = self._ip(ino)
        if length > 0 and self._small(ip.ext, off // BS, _ceil_blocks(off + length)):
            self._store_rows(ip, off, length, byte & 0xFF)
            return
        self._write(ip, off, length, byte & 0xFF, FsChange(), extend=False, store_only=True)

    def _store_rows(self, ip: Inode, off: int, length: int, byte: int) -> None:
        """:meth:`_write_rows` with ``store_only`` (its FsChange is dropped by :meth:`store`):
        only the content of the private written blocks changes."""
        end = off + length
        b0, b1 = off // BS, _ceil_blocks(end)
        rows = self._map_shared_rows(ip, b0, b1)
        for _f, _n, _p, st, c in rows:
            if st != WRITTEN or c > 1:
                raise FsError("EFAULT", "store into a block that is not a private written block")
        full_cid = self.contents.uniform(byte)  # interned first, as _write_rows does
        head_a = off - b0 * BS
        tail_e = end - (b1 - 1) * BS
        cs = []
        fb0, fb1 = b0, b1  # the whole blocks stored
        if head_a > 0 or (b1 - b0 == 1 and tail_e < BS):
            e_ = tail_e if b1 - b0 == 1 else BS
            cs.append(self._overlay_block(rows, b0, head_a, e_, byte))
            fb0 += 1
        if tail_e < BS and b1 - 1 >= fb0:
            cs.append(self._overlay_block(rows, b1 - 1, 0, tail_e, byte))
            fb1 -= 1
        if fb1 > fb0:
            for f, n, p, _st, _c in rows:
                s_ = max(f, fb0)
                e2 = min(f + n, fb1)
                if e2 > s_:
                    cs.append((p + s_ - f, e2 - s_, full_cid))
        self._set_content_rows(cs)

    def _overlay_block(self, rows: list, fb: int, a: int, e: int, byte: int) -> tuple:
        """Content row ``(pblock, 1, cid)`` of file block ``fb`` of private written ``rows``
        after storing ``byte`` over its bytes ``[a, e)``."""
        for f, n, p, _st, _c in rows:
            if f <= fb < f + n:
                pb = p + fb - f
                return pb, 1, self.contents.overlay(self._cid_rows(pb, 1)[0][2], a, e, byte)
        raise AssertionError("block outside the rows")

    def cow_blocks(self, ino: int, fblock: int, nblocks: int) -> FsChange:
        """Write-fault CoW: shared written blocks in range get new private blocks (full copy,
        via the CoW fork: allocate, convert now, end_cow remap), old references dropped."""
        ip = self._ip(ino)
        ch = FsChange(size_before=ip.size, size_after=ip.size)
        if not len(ip.cow) and self._small(ip.ext, fblock, fblock + nblocks):
            self._cow_blocks_rows(ip, fblock, nblocks, ch)
            return ch
        f, n, p, st, cnt = self._map_shared(ip, fblock, fblock + nblocks)
        sh = (st == WRITTEN) & (cnt > 1)
        if not sh.any():
            return ch
        sf, sn, sp = f[sh], n[sh], p[sh]
        nf, nn, npp = self._alloc_for(sf, sn, None, ch, cow=True)
        ncow = int(sn.sum())
        # stage in the CoW fork (allocated and converted at once: convert_now for DAX)
        ip.cow.assign_many(nf, nn, [npp])
        self.cow_fork_allocations += ncow
        # full-block copy of the content
        qi, ss, sl, cid = self._cids(sp, sn)
        src_f = sf[qi] + (ss - sp[qi])
        # map the copied content onto the new blocks (pieces may cross allocation boundaries)
        qi2, ss2, sl2, rr2 = segments(nf, nn, src_f, sl)
        dst_p = npp[rr2] + (ss2 - nf[rr2])
        self._set_content(dst_p, sl2, cid[qi2])
        ch.cow_blocks += ncow
        ch.cow_bytes += ncow * BS
        self.cow_blocks_total += ncow
        self.cow_bytes_total += ncow * BS
        ch.pmem_read.extend((int(a) * BS, int(b) * BS) for a, b in zip(sp, sn, strict=False))
        ch.pmem_write.extend((int(a) * BS, int(b) * BS) for a, b in zip(npp, nn, strict=False))
        # end_cow: remap into the data fork, drop the old references
        ip.cow.splice(fblock, fblock + nblocks)
        k = ~sh
        self._rewrite(
            ip,
            fblock,
            fblock + nblocks,
            np.concatenate([f[k], nf]),
            np.concatenate([n[k], nn]),
            np.concatenate([p[k], npp]),
            np.concatenate([st[k], np.full(nf.shape[0], WRITTEN)]),
            ch,
        )
        self.cow_fork_remaps += ncow
        ch.remapped.extend(_franges(ino, sf, sn))
        self._refs(sp, sn, -1, ch)
        return ch

    def alloc_blocks(self, ino: int, fblock: int, nblocks: int) -> FsChange:
        """Write fault on holes/unwritten: allocate zeroed written blocks, convert unwritten
        blocks to written (zeroed, XFS_BMAPI_ZERO for DAX)."""
        ip = self._ip(ino)
        ch = FsChange(size_before=ip.size, size_after=ip.size)
        if self._small(ip.ext, fblock, fblock + nblocks):
            self._alloc_blocks_rows(ip, fblock, nblocks, ch)
            return ch
        f, n, p, st = self._map(ip, fblock, fblock + nblocks)
        hole = st == HOLE
        unw = st == UNWRITTEN
        if not (hole.any() or unw.any()):
            return ch
        goal = None
        if fblock > 0:
            _, _, pp, _ = self._map(ip, fblock - 1, fblock)
            if pp[0] >= 0:
                goal = int(pp[0]) + 1
        nf, nn, npp = self._alloc_for(f[hole], n[hole], goal, ch, ip)
        k = ~hole
        self._rewrite(
            ip,
            fblock,
            fblock + nblocks,
            np.concatenate([f[k], nf]),
            np.concatenate([n[k], nn]),
            np.concatenate([p[k], npp]),
            np.concatenate([np.where(unw[k], WRITTEN, st[k]), np.full(nf.shape[0], WRITTEN)]),
            ch,
        )
        zp = np.concatenate([npp, p[unw]])
        zn = np.concatenate([nn, n[unw]])
        self._set_content(zp, zn, np.zeros(zp.shape[0], _I64))
        ch.blocks_zeroed += int(zn.sum())
        ch.pmem_write.extend((int(a) * BS, int(b) * BS) for a, b in zip(zp, zn, strict=False))
        ch.newly_mapped.extend(_franges(ino, f[hole | unw], n[hole | unw]))
        return ch

    # ------------------------------------------------------------------ size / fallocate
    def truncate(self, ino: int, size: int) -> FsChange:
        """ftruncate (xfs_setattr_size): up zeroes past the old EOF; down zeroes the tail of
        the new EOF block (CoW if shared); down or same size frees every block past EOF
        (xfs_itruncate_extents, including fallocate -k preallocation)."""
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
            if size == 0 and old == 0 and len(ip.ext) == 0:
                ch.size_after = 0
                return ch
            if size % BS and size != old:
                # xfs_truncate_page (skipped for an unchanged size since "else if
                # (newsize != oldsize)"); CoW if shared (dax ops for zeroing since 6.2)
                self._zero_bytes(ip, size, BS - size % BS, ch)
            self._unmap(ip, _ceil_blocks(size), None, ch)
            ip.size = size
        ch.size_after = ip.size
        return ch

    def _alloc_unwritten(self, ip: Inode, b0: int, b1: int, ch: FsChange) -> None:
        """xfs_alloc_file_space: unwritten extents in the holes of ``[b0, b1)``."""
        if self._small(ip.ext, b0, b1):
            rows = self._map_rows(ip, b0, b1)
            holes = [(r[0], r[1]) for r in rows if r[3] == HOLE]
            if not holes:
                return
            goal = None
            if b0 > 0:
                goal = self._goal_after(ip, b0)
            if goal is None:
                goal = next((r[2] for r in rows if r[2] >= 0), None)
            new = self._alloc_rows(holes, goal, ch, ip)
            out = [r for r in rows if r[3] != HOLE and r[2] >= 0]
            out += [(f, n, p, UNWRITTEN) for f, n, p in new]
            out.sort()
            ch.extent_records_touched += ip.ext.splice_rows(b0, b1, out)
            return
        f, n, p, st = self._map(ip, b0, b1)
        hole = st == HOLE
        if not hole.any():
            return
        goal = None
        if b0 > 0:
            _, _, pp, _ = self._map(ip, b0 - 1, b0)
            if pp[0] >= 0:
                goal = int(pp[0]) + 1
        if goal is None and (p >= 0).any():
            goal = int(p[p >= 0][0])
        nf, nn, npp = self._alloc_for(f[hole], n[hole], goal, ch, ip)
        k = ~hole
        self._rewrite(
            ip,
            b0,
            b1,
            np.concatenate([f[k], nf]),
            np.concatenate([n[k], nn]),
            np.concatenate([p[k], npp]),
            np.concatenate([st[k], np.full(nf.shape[0], UNWRITTEN)]),
            ch,
        )

    def _falloc_checks(self, ip: Inode, off: int, length: int) -> None:
        if off < 0 or length <= 0:
            raise FsError("EINVAL", f"fallocate needs offset >= 0 and length > 0 ({off}, {length})")
        if off + length > MAX_FILE_SIZE:
            raise FsError("EFBIG", "fallocate range past the maximum file size")

    def _falloc_setsize(self, ip: Inode, new_end: int, keep_size: bool, ch: FsChange) -> None:
        if not keep_size and new_end > ip.size:
            self._zero_posteof(ip, new_end, ch)
            ip.size = new_end

    def fallocate(self, ino: int, off: int, length: int, *, keep_size: bool = False) -> FsChange:
        """fallocate mode 0: unwritten blocks in holes only (steps around existing and shared
        blocks); extends the size unless ``keep_size``."""
        ip = self._ip(ino)
        self._falloc_checks(ip, off, length)
        ch = FsChange(size_before=ip.size)
        self._alloc_unwritten(ip, off // BS, _ceil_blocks(off + length), ch)
        self._falloc_setsize(ip, off + length, keep_size, ch)
        ch.size_after = ip.size
        return ch

    def _free_file_space(self, ip: Inode, off: int, length: int, ch: FsChange) -> None:
        """xfs_free_file_space: unmap whole blocks, zero partial edges inside EOF."""
        b0 = _ceil_blocks(off)
        b1 = (off + length) // BS
        if b1 > b0:
            self._unmap(ip, b0, b1, ch)
        if off >= ip.size:
            return
        ln = min(length, ip.size - off)
        self._zero_bytes(ip, off, ln, ch)

    def punch(self, ino: int, off: int, length: int) -> FsChange:
        """FALLOC_FL_PUNCH_HOLE | KEEP_SIZE."""
        ip = self._ip(ino)
        self._falloc_checks(ip, off, length)
        ch = FsChange(size_before=ip.size)
        self._free_file_space(ip, off, length, ch)
        ch.size_after = ip.size
        return ch

    def zero_range(self, ino: int, off: int, length: int, *, keep_size: bool = False) -> FsChange:
        """FALLOC_FL_ZERO_RANGE (xfs_falloc_zero_range): free the range (whole blocks unmapped,
        partial edges zeroed, CoW if shared), then unwritten blocks over the rounded range."""
        ip = self._ip(ino)
        self._falloc_checks(ip, off, length)
        ch = FsChange(size_before=ip.size)
        self._free_file_space(ip, off, length, ch)
        self._alloc_unwritten(ip, off // BS, _ceil_blocks(off + length), ch)
        self._falloc_setsize(ip, off + length, keep_size, ch)
        ch.size_after = ip.size
        return ch

    def unshare(self, ino: int, off: int, length: int, *, keep_size: bool = False) -> FsChange:
        """FALLOC_FL_UNSHARE_RANGE (xfs_falloc_unshare_range): copy shared blocks inside EOF
        to private ones, then xfs_alloc_file_space (unwritten in holes) and the size."""
        ip = self._ip(ino)
        self._falloc_checks(ip, off, length)
        ch = FsChange(size_before=ip.size)
        if ip.reflink and off < ip.size:
            e = min(off + length, ip.size)
            sub = self.cow_blocks(ino, off // BS, _ceil_blocks(e) - off // BS)
            _merge_change(ch, sub)
        self._alloc_unwritten(ip, off // BS, _ceil_blocks(off + length), ch)
        self._falloc_setsize(ip, off + length, keep_size, ch)
        ch.size_after = ip.size
        return ch

    # ------------------------------------------------------------------ remap
    def _remap_checks(
        self, src: Inode, pos_in: int, dst: Inode, pos_out: int, length: int, dedup: bool
    ) -> int:
        """generic_remap_file_range_prep + generic_remap_checks + generic_remap_check_len.

        Returns the length to remap (0 = nothing to do)."""
        if pos_in < 0 or pos_out < 0 or length < 0:
            raise FsError("EINVAL", "negative offset or length")
        if length == 0:
            isize = src.size
            if dedup or pos_in == isize:
                return 0
            if pos_in > isize:
                raise FsError("EINVAL", f"source offset {pos_in} past source EOF {isize}")
            length = isize - pos_in
        if pos_in % BS or pos_out % BS:
            raise FsError("EINVAL", f"offsets must be block aligned ({pos_in}, {pos_out})")
        if pos_in + length > MAX_FILE_SIZE or pos_out + length > MAX_FILE_SIZE:
            raise FsError("EINVAL", "range wraps")
        size_in, size_out = src.size, dst.size
        if dedup and (
            pos_in >= size_in
            or pos_in + length > size_in
            or pos_out >= size_out
            or pos_out + length > size_out
        ):
            raise FsError("EINVAL", "dedupe ranges must lie inside both files")
        if pos_in >= size_in:
            raise FsError("EINVAL", f"source offset {pos_in} at or past source EOF {size_in}")
        count = min(length, size_in - pos_in)
        if pos_in + count == size_in and (not dedup or pos_out + count == size_out):
            bcount = _ceil_blocks(size_in) * BS - pos_in
        else:
            if count % BS:
                count -= count % BS
            bcount = count
        if src is dst and pos_out + bcount > pos_in and pos_out < pos_in + bcount:
            raise FsError("EINVAL", "overlapping ranges in the same file")
        if count != length and not dedup:
            raise FsError("EINVAL", f"clone range shortened from {length} to {count}")
        length = count
        if length == 0:
            return 0
        return length

    def _check_len(self, dst: Inode, pos_out: int, length: int, dedup: bool) -> int:
        """generic_remap_check_len: a partial EOF block may only land at/after dest EOF."""
        if length % BS == 0:
            return length
        new_len = length
        if pos_out + length < dst.size:
            new_len = length - length % BS
        if new_len == length:
            return length
        if dedup:
            return new_len
        raise FsError("EINVAL", "partial EOF block would land inside the destination")

    def _remap_blocks(
        self, src: Inode, pos_in: int, dst: Inode, pos_out: int, length: int, ch: FsChange
    ) -> None:
        """xfs_reflink_remap_blocks: share written source extents into dest; source holes and
        unwritten extents punch dest (unless both unwritten); same mapping = nothing."""
        nb = _ceil_blocks(length)
        sb, db = pos_in // BS, pos_out // BS
        if self._small(src.ext, sb, sb + nb) and self._small(dst.ext, db, db + nb):
            self._remap_blocks_rows(src, sb, dst, db, nb, ch)
            return
        sf, sn, sp, sst = self._map(src, sb, sb + nb)
        df, dn, dp, dst_st = self._map(dst, db, db + nb)
        # elementary pieces in dest coordinates: cut source pieces by dest pieces
        q_f = sf - sb + db
        if df.shape[0] == 1 and dp[0] < 0:
            # destination range is one hole (a new file or past EOF): no cutting needed
            ss, sl, s_p, s_st = q_f, sn, sp, sst
            d_p = np.full(ss.shape[0], -1, _I64)
            d_st = np.full(ss.shape[0], HOLE, _I64)
        else:
            qi, ss, sl, rr = segments(df, dn, q_f, sn)
            s_p = np.where(sp[qi] >= 0, sp[qi] + (ss - q_f[qi]), -1)
            s_st = sst[qi]
            d_p = np.where(dp[rr] >= 0, dp[rr] + (ss - df[rr]), -1)
            d_st = dst_st[rr]
        same = (s_p >= 0) & (s_p == d_p)
        both_unw = (s_st == UNWRITTEN) & (d_st == UNWRITTEN)
        act = ~(same | both_unw)
        if not act.any():
            return
        af, an = ss[act], sl[act]
        asp, ast = s_p[act], s_st[act]
        adp = d_p[act]
        share = ast == WRITTEN
        # increments first, then the destination's old references
        if share.any():
            self._refs(asp[share], an[share], +1, ch)
            k = int(an[share].sum())
            ch.remap_blocks += k
            self.remap_blocks_total += k
        fresh = share & (adp < 0)
        if fresh.any():
            ch.newly_mapped.extend(_franges(dst.ino, af[fresh], an[fresh]))
        old = adp >= 0
        if old.any():
            self._refs(adp[old], an[old], -1, ch)
            ch.remapped.extend(_franges(dst.ino, af[old], an[old]))
        # rewrite dest data fork over each acted piece
        new_f, new_n, new_p = af[share], an[share], asp[share]
        lo, hi = int(af[0]), int(af[-1] + an[-1])
        keep = ~act & (d_p >= 0)
        keep &= (ss >= lo) & (ss < hi)
        wst = np.full(new_f.shape[0], WRITTEN, _I64)
        if not keep.any():
            self._set_ext(dst, lo, hi, new_f, new_n, new_p, wst, ch)
            return
        self._rewrite(
            dst,
            lo,
            hi,
            np.concatenate([ss[keep], new_f]),
            np.concatenate([sl[keep], new_n]),
            np.concatenate([d_p[keep], new_p]),
            np.concatenate([d_st[keep], wst]),
            ch,
        )

    def _remap_blocks_rows(
        self, src: Inode, sb: int, dst: Inode, db: int, nb: int, ch: FsChange
    ) -> None:
        """:meth:`_remap_blocks` on rows (file blocks ``sb``/``db``, ``nb`` blocks)."""
        srows = self._map_rows(src, sb, sb + nb)
        drows = self._map_rows(dst, db, db + nb)
        # elementary pieces in dest coordinates: (f, n, s_p, s_st, d_p, d_st)
        pieces = []
        if len(drows) == 1 and drows[0][2] < 0:
            for f, n, p, st in srows:
                pieces.append((f - sb + db, n, p, st, -1, HOLE))
        else:
            for f, n, p, st in srows:
                qf = f - sb + db
                qe = qf + n
                for df, dn, dp, dst_ in drows:
                    s_ = max(df, qf)
                    e_ = min(df + dn, qe)
                    if e_ > s_:
                        pieces.append(
                            (
                                s_,
                                e_ - s_,
                                p + (s_ - qf) if p >= 0 else -1,
                                st,
                                dp + (s_ - df) if dp >= 0 else -1,
                                dst_,
                            )
                        )
        act = []
        keep = []
        for r in pieces:
            sp_, sst, dp_, dst_ = r[2], r[3], r[4], r[5]
            if (sp_ >= 0 and sp_ == dp_) or (sst == UNWRITTEN and dst_ == UNWRITTEN):
                keep.append(r)
            else:
                act.append(r)
        if not act:
            return
        share = [r for r in act if r[3] == WRITTEN]
        if share:
            self._refs_list([(r[2], r[1]) for r in share], +1, ch)
            k = sum(r[1] for r in share)
            ch.remap_blocks += k
            self.remap_blocks_total += k
        fresh = [(r[0], r[1]) for r in share if r[4] < 0]
        if fresh:
            ch.newly_mapped.extend(_franges_rows(dst.ino, fresh))
        old = [r for r in act if r[4] >= 0]
        if old:
            self._refs_list([(r[4], r[1]) for r in old], -1, ch)
            ch.remapped.extend(_franges_rows(dst.ino, [(r[0], r[1]) for r in old]))
        lo, hi = act[0][0], act[-1][0] + act[-1][1]
        out = [(r[0], r[1], r[4], r[5]) for r in keep if r[4] >= 0 and lo <= r[0] < hi]
        out += [(r[0], r[1], r[2], WRITTEN) for r in share]
        out.sort()
        ch.extent_records_touched += self._splice_ext(dst, lo, hi, out)

    def clone(
        self, dst: int, src: int, src_off: int = 0, dst_off: int = 0, length: int | None = None
    ) -> FsChange:
        """FICLONE (``length`` None: whole file) or FICLONERANGE (``length`` 0 = to source EOF)."""
        sip, dip = self._ip(src), self._ip(dst)
        ch = FsChange(size_before=dip.size)
        req = 0 if length is None else length
        if length is None:
            src_off = dst_off = 0
        ln = self._remap_checks(sip, src_off, dip, dst_off, req, dedup=False)
        if ln:
            ln = self._check_len(dip, dst_off, ln, dedup=False)
        if ln:
            # xfs_reflink_zero_posteof: zero from dest EOF up to pos_out
            if dst_off > dip.size:
                self._zero_posteof(dip, dst_off, ch)
            self._remap_blocks(sip, src_off, dip, dst_off, ln, ch)
            sip.reflink = dip.reflink = True
            if dst_off + ln > dip.size:
                dip.size = dst_off + ln
        ch.size_after = dip.size
        return ch

    def dedupe(self, dst: int, src: int, src_off: int, dst_off: int, length: int) -> FsChange:
        """FIDEDUPERANGE of one destination: share the blocks only if the bytes are equal
        (EBADE otherwise); shortened to whole blocks; reports the requested length."""
        sip, dip = self._ip(src), self._ip(dst)
        if src_off < 0 or dst_off < 0 or length < 0:
            raise FsError("EINVAL", "negative offset or length")
        if src_off + length > sip.size:
            raise FsError("EINVAL", "dedupe source range past source EOF")
        ch = FsChange(size_before=dip.size)
        done = 0
        while done < length or (length == 0 and done == 0):
            chunk = min(length - done, DEDUPE_MAX_BYTES)
            so, do = src_off + done, dst_off + done
            if chunk == 0:
                break
            ln = self._remap_checks(sip, so, dip, do, chunk, dedup=True)
            if ln:
                if not self.compare(src, so, dst, do, ln):
                    raise FsError("EBADE", "Extents did not match.")
                ln = self._check_len(dip, do, ln, dedup=True)
            if ln:
                self._remap_blocks(sip, so, dip, do, ln, ch)
                sip.reflink = dip.reflink = True
            done += chunk
            ch.bytes_deduped += chunk
        ch.size_after = dip.size
        return ch

    def _copy_around(self, ch: FsChange, src: int, dst: int, a: int, e_: int) -> None:
        """CoW of one block written at bytes ``[a, e_)``: the head ``[0, a)`` and the tail
        ``[e_, BS)`` are copied from the old block at byte address ``src`` to the new one at
        ``dst`` (``dax_iomap_copy_around``)."""
        kept = BS - (e_ - a)
        ch.cow_bytes += kept
        self.cow_bytes_total += kept
        if a:
            ch.pmem_read.append((src, a))
            ch.pmem_write.append((dst, a))
        if e_ < BS:
            ch.pmem_read.append((src + e_, BS - e_))
            ch.pmem_write.append((dst + e_, BS - e_))

    # ------------------------------------------------------------------ reads
    def _cid_pieces(self, ip: Inode, b0: int, b1: int) -> list:
        """:meth:`_block_cids` as a list of ``(fblock, n, cid)`` (what :meth:`_chunks` walks)."""
        f, n, c = self._block_cids(ip, b0, b1)
        return list(zip(f.tolist(), n.tolist(), c.tolist(), strict=True))

    def _block_cids(self, ip: Inode, b0: int, b1: int):
        """Content of file blocks ``[b0, b1)``: runs ``(fblock, n, cid)`` (holes/unwritten = 0)."""
        f, n, p, st = self._map(ip, b0, b1)
        w = st == WRITTEN
        if not w.any():
            return f, n, np.zeros(f.shape[0], _I64)
        idx = np.flatnonzero(w)
        qi, ss, sl, cid = self._cids(p[idx], n[idx])
        q = idx[qi]
        nf = f[q] + (ss - p[q])
        z = np.flatnonzero(~w)
        of = np.concatenate([nf, f[z]])
        on = np.concatenate([sl, n[z]])
        oc = np.concatenate([cid, np.zeros(z.shape[0], _I64)])
        if z.shape[0]:
            o = np.argsort(of, kind="stable")
            of, on, oc = of[o], on[o], oc[o]
        # coalesce equal neighbours
        if of.shape[0] > 1:
            head = np.ones(of.shape[0], dtype=bool)
            head[1:] = oc[1:] != oc[:-1]
            idx = np.flatnonzero(head)
            on = np.add.reduceat(on, idx)
            of, oc = of[idx], oc[idx]
        return of, on, oc

    def _chunks(self, ip: Inode, off: int, length: int, clip_eof: bool):
        """Yield the bytes of ``[off, off + length)`` in chunks (zeros past EOF unless clipped)."""
        end = off + length
        if clip_eof:
            end = min(end, ip.size)
        data_end = min(end, ip.size)
        if data_end > off:
            b0, b1 = off // BS, _ceil_blocks(data_end)
            pos = off
            for fi, ni, ci in self._cid_pieces(ip, b0, b1):
                s = max(pos, fi * BS)
                e = min(data_end, (fi + ni) * BS)
                if e <= s:
                    continue
                blk = self.contents.data(ci)
                a = s - fi * BS
                # leading partial block
                if a % BS:
                    ab = a % BS
                    take = min(BS - ab, e - s)
                    yield blk[ab : ab + take]
                    s += take
                nfull = (e - s) // BS
                if nfull:
                    rep = min(nfull, 256)
                    big = blk * rep
                    k = nfull
                    while k >= rep:
                        yield big
                        k -= rep
                    if k:
                        yield blk * k
                    s += nfull * BS
                if e > s:
                    yield blk[: e - s]
                pos = e
        if end > max(data_end, off):
            z = end - max(data_end, off)
            zb = bytes(min(z, 1 << 20))
            while z > 0:
                t = min(z, len(zb))
                yield zb[:t]
                z -= t

    def pread(self, ino: int, off: int, length: int) -> bytes:
        """read(2): bytes of ``[off, off + length)`` clipped at EOF."""
        ip = self._ip(ino)
        if off < 0 or length < 0:
            raise FsError("EINVAL", "negative offset or length")
        if off >= ip.size:
            return b""
        return b"".join(self._chunks(ip, off, length, clip_eof=True))

    def md5(self, ino: int, off: int = 0, length: int | None = None) -> str:
        """md5 (hex) of the file (``length`` None: from ``off`` to EOF), or of the raw range
        ``[off, off + length)`` read through the block map with zeros past EOF."""
        ip = self._ip(ino)
        if length is None and off == 0:
            return self._md5_file(ip)
        h = hashlib.md5()
        if length is None:
            length = max(ip.size - off, 0)
            it = self._chunks(ip, off, length, clip_eof=True)
        else:
            it = self._chunks(ip, off, length, clip_eof=False)
        for c in it:
            h.update(c)
        return h.hexdigest()

    _MD5_STEP = 64  # blocks between cached hash states
    _MD5_MAX_RUNS = 256  # files with more content runs are hashed without the cache
    _MD5_MAX_STATES = 200_000

    def _hash_blocks(self, h, cid: int, k: int) -> None:
        blk = self.contents.data(cid)
        if k <= 0:
            return
        rep = min(k, 256)
        big = blk * rep
        while k >= rep:
            h.update(big)
            k -= rep
        if k:
            h.update(blk * k)

    def _md5_file(self, ip: Inode) -> str:
        """md5 of a whole file. Files made of the same content runs share hash prefixes, so
        md5 states are cached every ``_MD5_STEP`` blocks along the chain of runs ``(blocks,
        content id)`` and a later file resumes from the longest cached prefix (exact: md5 is
        a sequential state machine; ``hashlib`` states are copied)."""
        size = ip.size
        full = size // BS
        tail = size % BS
        f, n, c = self._block_cids(ip, 0, _ceil_blocks(size)) if size else (EMPTY,) * 3
        if f.shape[0] > self._MD5_MAX_RUNS:
            h = hashlib.md5()
            for chunk in self._chunks(ip, 0, size, clip_eof=True):
                h.update(chunk)
            return h.hexdigest()
        if len(self._md5_states) > self._MD5_MAX_STATES:
            self._md5_states.clear()
            self._md5_chain.clear()
        step = self._MD5_STEP
        h = hashlib.md5()
        parent = 0
        last_cid = ZERO_CID
        for fi, ni, ci in zip(f.tolist(), n.tolist(), c.tolist(), strict=True):
            k = min(ni, full - fi)  # whole blocks of this run inside EOF
            last_cid = ci
            if k <= 0:
                break
            states = self._md5_states.setdefault((parent, ci), {})
            m = (k // step) * step
            while m > 0 and m not in states:
                m -= step
            if m:
                h = states[m].copy()
            done = m
            while done + step <= k:
                self._hash_blocks(h, ci, step)
                done += step
                states[done] = h.copy()
            self._hash_blocks(h, ci, k - done)
            key = (parent, k, ci)
            nxt = self._md5_chain.get(key)
            if nxt is None:
                nxt = len(self._md5_chain) + 1
                self._md5_chain[key] = nxt
            parent = nxt
        if tail:
            h.update(self.contents.data(last_cid)[:tail])
        return h.hexdigest()

    def byte_runs(self, ino: int, off: int, length: int):
        """What read(2) of ``[off, off + length)`` returns (clipped at EOF), as coalesced
        constant-byte runs ``(lens, vals)`` (int64 arrays; adjacent runs differ in value)
        without materialising the bytes."""
        if off < 0 or length < 0:
            raise FsError("EINVAL", "negative offset or length")
        return self._byte_runs(self._ip(ino), off, length)

    def byte_runs_list(self, ino: int, off: int, length: int) -> tuple[list, list]:
        """:meth:`byte_runs` as Python lists ``(lens, vals)`` (the same runs; no array is
        built for the short ranges the list fast path serves)."""
        if off < 0 or length < 0:
            raise FsError("EINVAL", "negative offset or length")
        ip = self._ip(ino)
        small = self._byte_runs_small(ip, off, length)
        if small is not None:
            return small
        lens, vals = self._byte_runs(ip, off, length)
        return lens.tolist(), vals.tolist()

    def _byte_runs(self, ip: Inode, off: int, length: int):
        """Bytes of ``[off, off+length)`` (clipped at EOF) as coalesced runs ``(lens, vals)``."""
        small = self._byte_runs_small(ip, off, length)
        if small is not None:
            ln, vs = small
            if not ln:
                return EMPTY, EMPTY
            return np.array(ln, dtype=_I64), np.array(vs, dtype=_I64)
        end = min(off + length, ip.size)
        b0, b1 = off // BS, _ceil_blocks(end)
        f, n, c = self._block_cids(ip, b0, b1)
        lens, vals, pos = [], [], []
        uc = np.unique(c)
        runs_of = {int(k): self.contents.runs(int(k)) for k in uc}
        for fi, ni, ci in zip(f.tolist(), n.tolist(), c.tolist(), strict=False):
            r = runs_of[ci]
            if len(r) == 1:
                # clipped at the end: a run to the last block of a file near 2**63 bytes
                # (its size rounded up to blocks) would end at 2**63, past int64
                lens.append(np.array([min(ni * BS, end - fi * BS)], _I64))
                vals.append(np.array([r[0][2]], _I64))
                pos.append(np.array([fi * BS], _I64))
            else:
                rl = np.array([x[1] for x in r], _I64)
                rv = np.array([x[2] for x in r], _I64)
                ro = np.array([x[0] for x in r], _I64)
                lens.append(np.tile(rl, ni))
                vals.append(np.tile(rv, ni))
                pos.append(
                    (
                        np.repeat(np.arange(fi, fi + ni, dtype=_I64) * BS, rl.shape[0])
                        + np.tile(ro, ni)
                    )
                )
        L = np.concatenate(lens)
        V = np.concatenate(vals)
        P = np.concatenate(pos)
        s = np.maximum(P, off)
        e = P + np.minimum(L, end - P)  # not P + L: that passes 2**63 in a file near the limit
        ok = e > s
        L, V = (e - s)[ok], V[ok]
        if L.shape[0] > 1:
            head = np.ones(L.shape[0], dtype=bool)
            head[1:] = V[1:] != V[:-1]
            idx = np.flatnonzero(head)
            L = np.add.reduceat(L, idx)
            V = V[idx]
        return L, V

    def _byte_runs_small(self, ip: Inode, off: int, length: int):
        """:meth:`_byte_runs` as lists ``(lens, vals)`` when the range is empty or short
        (the list path), else None."""
        end = min(off + length, ip.size)
        if end <= off:
            return [], []
        b0, b1 = off // BS, _ceil_blocks(end)
        if b1 - b0 <= 64 and self._small(ip.ext, b0, b1):
            return self._byte_runs_rows(ip, off, end, b0, b1)
        return None

    def _byte_runs_rows(self, ip: Inode, off: int, end: int, b0: int, b1: int):
        """:meth:`_byte_runs` of ``[off, end)`` as lists (blocks ``[b0, b1)``)."""
        return _cid_byte_runs(self._cid_pieces_rows(ip, b0, b1), off, end, self.contents.runs)

    def _cid_pieces_rows(self, ip: Inode, b0: int, b1: int):
        """Content pieces ``(fblock, n, cid)`` of file blocks ``[b0, b1)`` from the rows
        (holes and unwritten blocks read as zeros; not coalesced)."""
        for f, n, p, st in self._map_rows(ip, b0, b1):
            if st == WRITTEN:
                for cp, cn, cid in self._cid_rows(p, n):
                    yield f + cp - p, cn, cid
            else:
                yield f, n, ZERO_CID

    def compare(self, ino_a: int, off_a: int, ino_b: int, off_b: int, length: int) -> bool:
        """Whether the two ranges read (clipped at EOF) the same bytes."""
        ipa, ipb = self._ip(ino_a), self._ip(ino_b)
        a = self._byte_runs_small(ipa, off_a, length)
        if a is not None:
            b = self._byte_runs_small(ipb, off_b, length)
            if b is not None:
                return a == b
        la, va = self._byte_runs(ipa, off_a, length)
        lb, vb = self._byte_runs(ipb, off_b, length)
        return bool(np.array_equal(la, lb) and np.array_equal(va, vb))

    def block_content(self, pblock: int) -> tuple[tuple[int, int, int], ...]:
        """Byte runs ``((off, len, byte), ...)`` held by a physical block."""
        return self.contents.runs(self._cid_of(pblock))

    def block_content_id(self, pblock: int) -> int:
        """Interned content id of the 4 KiB a physical block holds: two blocks hold the same
        bytes exactly when their ids are equal (a block of zeros: ``contents.uniform(0)``)."""
        return self._cid_of(pblock)

    def block_data(self, pblock: int) -> bytes:
        """The 4 KiB a physical block holds (what a load through a PTE mapping it reads,
        whichever file owns the block now, or none)."""
        return self.contents.data(self._cid_of(pblock))

    def block_content_md5(self, pblock: int) -> str:
        """md5 of the 4 KiB a physical block holds."""
        return hashlib.md5(self.contents.data(self._cid_of(pblock))).hexdigest()

    # ------------------------------------------------------------------ checks
    def counters(self) -> dict[str, int]:
        """Totals since mkfs."""
        return {
            "blocks_allocated": self.blocks_allocated,
            "blocks_freed": self.blocks_freed,
            "refcount_increments": self.refcount_increments,
            "refcount_decrements": self.refcount_decrements,
            "cow_blocks": self.cow_blocks_total,
            "cow_bytes": self.cow_bytes_total,
            "cow_fork_allocations": self.cow_fork_allocations,
            "cow_fork_remaps": self.cow_fork_remaps,
            "remap_blocks": self.remap_blocks_total,
            "free_blocks": self._nfree,
        }

    def shared_blocks(self, ino: int) -> tuple[int, int]:
        """``(shared, mapped)`` block counts of a file (``@model_shared_blocks n/m``)."""
        ip = self._ip(ino)
        if not len(ip.ext):
            return 0, 0
        e = ip.ext
        _, _, sl, cnt = self._refcounts(e.cols[0], e.length)
        return int(sl[cnt > 1].sum()), int(e.length.sum())

    def _invariants_hold_small(self, max_runs: int = 512) -> bool:
        """Whether every assertion of :meth:`check_invariants` holds, evaluated exactly on
        the list forms of the run maps (no numpy call: a few µs for the handful of extents
        of a small filesystem, an empty one included).

        False when any assertion fails *or* when this path does not decide (more than
        ``max_runs`` fork runs, a non-positive length, an unsorted free list): the caller
        then runs the vectorised check, which names the failure. True implies the
        vectorised check passes.
        """
        pts: dict[int, int] = {}
        nruns = 0
        for ip in self.inodes.values():
            e = ip.ext
            n = len(e)
            if n:
                nruns += n
                if nruns > max_runs:
                    return False
                L = e.lists()
                S, N, P = L[0], L[1], L[2]
                end = None
                for s, ln, p in zip(S, N, P, strict=True):
                    if ln <= 0 or (end is not None and s < end):
                        return False  # (extents overlap or out of order: the full check)
                    end = s + ln
                    pts[p] = pts.get(p, 0) + 1
                    pts[p + ln] = pts.get(p + ln, 0) - 1
            c = ip.cow
            n = len(c)
            if n:
                nruns += n
                if nruns > max_runs:
                    return False
                L = c.lists()
                for ln, p in zip(L[1], L[2], strict=True):
                    if ln <= 0:
                        return False
                    pts[p] = pts.get(p, 0) + 1
                    pts[p + ln] = pts.get(p + ln, 0) - 1
        # maximal runs of constant non-zero reference count (what sweep_deltas returns)
        rs: list = []
        rl: list = []
        rd: list = []
        level = 0
        prev = 0
        for x in sorted(pts):
            if level:
                if rd and rd[-1] == level and rs[-1] + rl[-1] == prev:
                    rl[-1] += x - prev
                else:
                    rs.append(prev)
                    rl.append(x - prev)
                    rd.append(level)
            level += pts[x]
            prev = x
        if level:
            return False
        # refcount records: the runs with count >= 2, touching equal ones merged
        es: list = []
        el: list = []
        ec: list = []
        for s, ln, d in zip(rs, rl, rd, strict=True):
            if d >= 2:
                if ec and ec[-1] == d and es[-1] + el[-1] == s:
                    el[-1] += ln
                else:
                    es.append(s)
                    el.append(ln)
                    ec.append(d)
        R = self.refc.lists()
        if R[0] != es or R[1] != el or R[2] != ec:
            return False
        F = self.free.lists()
        FS, FL = F[0], F[1]
        if sum(rl) + self._nfree + self.meta_blocks != self.nblocks or sum(FL) != self._nfree:
            return False
        fend = None
        for s, ln in zip(FS, FL, strict=True):
            if ln <= 0 or (fend is not None and s < fend):
                return False
            fend = s + ln
        if FS:
            for s, ln in zip(rs, rl, strict=True):  # no referenced block on the free list
                i = bisect_left(FS, s + ln) - 1
                if i >= 0 and FS[i] + FL[i] > s:
                    return False
        return True

    def check_invariants(self) -> None:
        """Assert refcount conservation: for every physical block, its refcount equals the
        number of data-fork references; free space and references are disjoint and cover
        exactly the used blocks. Vectorised over runs (a small filesystem that passes is
        decided exactly on the run maps' list forms first, :meth:`_invariants_hold_small`)."""
        if self._invariants_hold_small():
            return
        ps, ns = [], []
        for ip in self.inodes.values():
            ps.append(ip.ext.cols[0])
            ns.append(ip.ext.length)
            ps.append(ip.cow.cols[0])
            ns.append(ip.cow.length)
        ps = np.concatenate(ps) if ps else EMPTY
        ns = np.concatenate(ns) if ns else EMPTY
        if ps.shape[0]:
            s, ln, d = sweep_deltas(ps, ns, np.ones(ps.shape[0], _I64))
        else:
            s, ln, d = EMPTY, EMPTY, EMPTY
        # expected refcount records: runs with count >= 2
        k = d >= 2
        es, el, ed = s[k], ln[k], d[k]
        from sim.fs.runs import merge_runs

        es, el, ec = merge_runs(es, el, [ed], (False,))
        rc = self.refc
        assert (
            np.array_equal(es, rc.start)
            and np.array_equal(el, rc.length)
            and np.array_equal(ec[0], rc.cols[0])
        ), "refcount records differ from references"
        used = int(ln.sum())
        assert used + self._nfree + self.meta_blocks == self.nblocks, (
            f"used {used} + free {self._nfree} + metadata {self.meta_blocks} != {self.nblocks}"
        )
        assert int(self.free.length.sum()) == self._nfree
        if s.shape[0] and len(self.free):
            qi, ss, sl, rr = segments(self.free.start, self.free.length, s, ln)
            assert (rr < 0).all(), "a referenced block is on the free list"
        for ip in self.inodes.values():
            e = ip.ext
            if len(e) > 1:
                assert (e.start[1:] >= e.start[:-1] + e.length[:-1]).all()


def _row_of(fb: int, rr: list) -> tuple:
    """The row of ``rr`` (rows ``(f, n, ...)``) holding file block ``fb``."""
    for r in rr:
        if r[0] <= fb < r[0] + r[1]:
            return r
    raise AssertionError("block outside the rows")


def _extents_of_rows(rows) -> list[Extent]:
    """:meth:`FileSystem.bmap` of rows ``(f, n, p, state, refcount)``: neighbours with one
    state and one sharing that continue each other merged into one extent."""
    out: list = []
    for f, n, p, st, c in rows:
        sh = c > 1
        if out:
            q = out[-1]
            if (
                q[3] == st
                and q[4] == sh
                and ((p < 0 and q[1] < 0) or (q[1] >= 0 and q[1] + q[2] == p))
            ):
                out[-1] = [q[0], q[1], q[2] + n, st, sh]
                continue
        out.append([f, p, n, st, sh])
    return [Extent(*e) for e in out]


def _cid_byte_runs(pieces, off: int, end: int, runs_of) -> tuple[list, list]:
    """The bytes of ``[off, end)`` as coalesced constant-byte runs ``(lens, vals)`` from
    content pieces ``(fblock, n, cid)`` in file order covering it (``runs_of(cid)``: the
    ``(offset, length, byte)`` runs of one block's content)."""
    L: list = []
    V: list = []
    for fi, ni, ci in pieces:
        r = runs_of(ci)
        if len(r) == 1:  # one byte value over the whole piece (most pieces): no segment list
            s_ = fi * BS
            e_ = s_ + ni * BS
            if s_ < off:
                s_ = off
            if e_ > end:
                e_ = end
            if e_ > s_:
                v = r[0][2]
                if V and V[-1] == v:
                    L[-1] += e_ - s_
                else:
                    L.append(e_ - s_)
                    V.append(v)
            continue
        for b in range(fi, fi + ni):
            for o, ln, v in r:
                P = b * BS + o
                s_ = max(P, off)
                e_ = min(P + ln, end)
                if e_ > s_:
                    if V and V[-1] == v:
                        L[-1] += e_ - s_
                    else:
                        L.append(e_ - s_)
                        V.append(v)
    return L, V


def _delta_runs(ranges: list, delta: int) -> list:
    """``delta`` added once per ``(p, n)`` range (ranges may repeat or overlap), summed:
    maximal runs ``(p, n, d)`` of one non-zero total ``d``, in block order."""
    if len(ranges) == 1:
        p, n = ranges[0]
        return [(p, n, delta)] if delta and n > 0 else []
    ev: dict[int, int] = {}
    for p, n in ranges:
        ev[p] = ev.get(p, 0) + delta
        ev[p + n] = ev.get(p + n, 0) - delta
    pts = sorted(ev)
    level = 0
    runs = []
    for a, b in zip(pts, pts[1:], strict=False):
        level += ev[a]
        if level:
            runs.append((a, b - a, level))
    return merge_list_runs(runs, (False,))


def _franges(ino: int, f: np.ndarray, n: np.ndarray) -> list[tuple[int, int, int]]:
    """``(ino, fblock, nblocks)`` tuples of file ranges, touching neighbours merged."""
    f = np.asarray(f, dtype=_I64)
    if f.shape[0] == 0:
        return []
    n = np.asarray(n, dtype=_I64)
    if f.shape[0] > 1:
        o = np.argsort(f, kind="stable")
        f, n = f[o], n[o]
        head = np.ones(f.shape[0], dtype=bool)
        head[1:] = f[:-1] + n[:-1] != f[1:]
        idx = np.flatnonzero(head)
        n = np.add.reduceat(n, idx)
        f = f[idx]
    return [(ino, a, b) for a, b in zip(f.tolist(), n.tolist(), strict=True)]


def _last_end(m: RunMap) -> int:
    """End of the last run of a non-empty run map."""
    i = len(m) - 1
    if m.is_list_form():
        ls = m.lists()
        return ls[0][i] + ls[1][i]
    return int(m.start[i] + m.length[i])


def _franges_rows(ino: int, pieces: list) -> list[tuple[int, int, int]]:
    """:func:`_franges` of ``(f, n)`` pieces."""
    if not pieces:
        return []
    if len(pieces) > 1:
        pieces = sorted(pieces)
    out = []
    cf, cn = pieces[0]
    for f, n in pieces[1:]:
        if cf + cn == f:
            cn += n
        else:
            out.append((ino, cf, cn))
            cf, cn = f, n
    out.append((ino, cf, cn))
    return out


def _merge_change(into: FsChange, other: FsChange) -> None:
    for k in ("remapped", "newly_mapped", "pmem_read", "pmem_write"):
        getattr(into, k).extend(getattr(other, k))
    for k in (
        "blocks_allocated",
        "blocks_freed",
        "cow_blocks",
        "cow_bytes",
        "refcount_changes",
        "refcount_increments",
        "refcount_decrements",
        "extent_records_touched",
        "refcount_records_touched",
        "bytes_deduped",
        "remap_blocks",
    ):
        setattr(into, k, getattr(into, k) + getattr(other, k))
