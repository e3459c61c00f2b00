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

import numpy as np

from sim.fs.change import BLOCK_SIZE, HOLE, UNWRITTEN, WRITTEN, Extent, FsChange, FsError
from sim.fs.content import ZERO_CID, ContentStore
from sim.fs.runs import EMPTY, RunMap, segments, sweep_deltas

__all__ = ["FileSystem", "Inode", "MAX_FILE_SIZE", "DEDUPE_MAX_BYTES"]

BS = BLOCK_SIZE
#: s_maxbytes of XFS on 64-bit (MAX_LFS_FILESIZE).
MAX_FILE_SIZE = (1 << 63) - 1
#: vfs_dedupe_file_range caps one request at 1 GiB.
DEDUPE_MAX_BYTES = 1 << 30

_I64 = np.int64


def _a(x) -> np.ndarray:
    return np.asarray(x, dtype=_I64)


def _ceil_blocks(nbytes: int) -> int:
    return -(-nbytes // BS)


class Inode:
    """One regular file: size, data fork, CoW fork, reflink flag."""

    __slots__ = ("ino", "size", "ext", "cow", "reflink")

    def __init__(self, ino: int):
        self.ino = ino
        self.size = 0
        #: data fork: runs of file blocks, columns (pblock [offset], state)
        self.ext = RunMap((True, False))
        #: CoW staging fork: runs of file blocks, column pblock [offset]
        self.cow = RunMap((True,))
        #: XFS_DIFLAG2_REFLINK: set on both sides of a clone
        self.reflink = False


class FileSystem:
    """A reflink filesystem of ``nblocks`` 4 KiB blocks.

    Parameters
    ----------
    nblocks : int
        Device size in blocks.
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
        self.free = RunMap(())
        self.free.splice(0, self.nblocks, _a([0]), _a([self.nblocks]), [])
        self._nfree = self.nblocks
        self.refc = RunMap((False,))
        self.content = RunMap((False,))
        self.inodes: dict[int, Inode] = {}
        self.names: dict[str, int] = {}
        self._next_ino = 128
        # counters
        self.blocks_allocated = 0
        self.blocks_freed = 0
        self.refcount_increments = 0
        self.refcount_decrements = 0
        self.cow_blocks_total = 0
        self.cow_bytes_total = 0
        self.cow_fork_allocations = 0
        self.cow_fork_remaps = 0
        self.remap_blocks_total = 0
        # md5 of whole files: hash states cached along content-run prefixes (see _md5_file)
        self._md5_chain: dict[tuple[int, int, int], int] = {}
        self._md5_states: dict[tuple[int, int], dict[int, object]] = {}

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
        return self.open_ex(path, create=create, trunc=trunc)[0]

    def open_ex(
        self, path: str, *, create: bool = False, trunc: bool = False
    ) -> tuple[int, FsChange]:
        """As :meth:`open`, also returning what O_TRUNC did."""
        self._check_path(path)
        ino = self.names.get(path)
        if ino is None:
            if not create:
                raise FsError("ENOENT", f"{path}: no such file")
            ino = self._next_ino
            self._next_ino += 1
            self.inodes[ino] = Inode(ino)
            self.names[path] = ino
            return ino, FsChange()
        if trunc:
            return ino, self.truncate(ino, 0)
        return ino, FsChange()

    def lookup(self, path: str) -> int:
        """Inode of ``path`` (ENOENT if absent)."""
        ino = self.names.get(path)
        if ino is None:
            raise FsError("ENOENT", f"{path}: no such file")
        return ino

    def exists(self, path: str) -> bool:
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
        return self._ip(ino).size

    def is_reflink(self, ino: int) -> bool:
        """XFS_DIFLAG2_REFLINK of the inode."""
        return self._ip(ino).reflink

    def unlink(self, path: str) -> FsChange:
        """Remove ``path`` and drop all its block references."""
        ino = self.lookup(path)
        ip = self.inodes[ino]
        ch = FsChange(size_before=ip.size)
        self._unmap(ip, 0, None, ch)
        del self.names[path]
        del self.inodes[ino]
        return ch

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

    def _alloc_for(self, f: np.ndarray, n: np.ndarray, goal: int | None, ch: FsChange):
        """Allocate physical blocks for file segments ``(f, n)``; return pieces ``(f, n, p)``."""
        total = int(n.sum())
        if total == 0:
            return EMPTY, EMPTY, EMPTY
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
        s, ln, d = sweep_deltas(ps, ns, np.full(ps.shape[0], delta, _I64))
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
        """Reference count of a physical block (0 = free)."""
        rc = self.refc
        i = int(rc.start.searchsorted(pblock, side="right")) - 1
        if i >= 0 and rc.start[i] + rc.length[i] > pblock:
            return int(rc.cols[0][i])
        fr = self.free
        i = int(fr.start.searchsorted(pblock, side="right")) - 1
        if i >= 0 and fr.start[i] + fr.length[i] > pblock:
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
        return self._map_shared(ip, fblock, fblock + nblocks)

    def bmap(self, ino: int, fblock: int, nblocks: int = 1) -> list[Extent]:
        """Block map of ``[fblock, fblock + nblocks)``: extents split where sharing changes."""
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
                if not len(m):
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
        return int(self._cids(_a([pblock]), _a([1]))[3][0])

    def _set_content(self, ps, ns, cids) -> None:
        ps = _a(ps)
        if ps.shape[0]:
            self.content.assign_many(ps, _a(ns), [_a(cids)])

    # ------------------------------------------------------------------ unmapping
    def _unmap(self, ip: Inode, b0: int, b1: int | None, ch: FsChange) -> None:
        """Remove data-fork mappings of ``[b0, b1)`` (None = to the end); drop references."""
        e = ip.ext
        if b1 is None:
            b1 = int(e.start[-1] + e.length[-1]) if len(e) else b0
            if len(ip.cow):
                b1 = max(b1, int(ip.cow.start[-1] + ip.cow.length[-1]))
        if b1 <= b0:
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
        nf, nn, np_ = self._alloc_for(f[new], n[new], goal, ch)
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
                kept = BS - (e_ - a)
                ch.cow_bytes += kept
                self.cow_bytes_total += kept
                src = int(p[i] + fb - f[i]) * BS
                dst = new_p_of(fb) * BS
                if a:
                    ch.pmem_read.append((src, a))
                    ch.pmem_write.append((dst, a))
                if e_ < BS:
                    ch.pmem_read.append((src + e_, BS - e_))
                    ch.pmem_write.append((dst + e_, BS - e_))
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
        _, _, p, st = self._map(ip, b, b + 1)
        if st[0] != WRITTEN:
            return
        stop = min(upto, (b + 1) * BS)
        if stop <= sz:
            return
        if self.contents.is_zero(self._cid_of(int(p[0])), sz - b * BS, stop - b * BS):
            return
        self._write(ip, sz, stop - sz, 0, ch, extend=False)

    def _zero_bytes(self, ip: Inode, off: int, length: int, ch: FsChange) -> None:
        """iomap/dax zero range: zero written blocks only (holes and unwritten are skipped),
        CoW if shared; never changes the size."""
        if length <= 0:
            return
        end = off + length
        f, n, p, st = self._map(ip, off // BS, _ceil_blocks(end))
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

    def pwrite(self, ino: int, off: int, length: int, byte: int) -> FsChange:
        """write(2) of ``length`` bytes of ``byte`` at ``off`` (extends EOF)."""
        ip = self._ip(ino)
        self._check_range(off, length)
        ch = FsChange(size_before=ip.size)
        if length > 0:
            if off > ip.size:
                self._zero_posteof(ip, off, ch)
            self._write(ip, off, length, byte & 0xFF, ch)
        ch.size_after = ip.size
        return ch

    def store(self, ino: int, off: int, length: int, byte: int) -> None:
        """In-place store into private written blocks (a store through a writable mapping
        after the fault made the blocks private). May go past EOF inside the EOF page."""
        ip = self._ip(ino)
        self._write(ip, off, length, byte & 0xFF, FsChange(), extend=False, store_only=True)

    def cow_blocks(self, ino: int, fblock: int, nblocks: int) -> FsChange:
        """Write-fault CoW: shared written blocks in range get new private blocks (full copy,
        via the CoW fork: allocate, convert now, end_cow remap), old references dropped."""
        ip = self._ip(ino)
        ch = FsChange(size_before=ip.size, size_after=ip.size)
        f, n, p, st, cnt = self._map_shared(ip, fblock, fblock + nblocks)
        sh = (st == WRITTEN) & (cnt > 1)
        if not sh.any():
            return ch
        sf, sn, sp = f[sh], n[sh], p[sh]
        nf, nn, npp = self._alloc_for(sf, sn, None, ch)
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
        nf, nn, npp = self._alloc_for(f[hole], n[hole], goal, ch)
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
        nf, nn, npp = self._alloc_for(f[hole], n[hole], goal, ch)
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

    # ------------------------------------------------------------------ reads
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
            f, n, c = self._block_cids(ip, b0, b1)
            pos = off
            for fi, ni, ci in zip(f.tolist(), n.tolist(), c.tolist(), strict=False):
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

    def _byte_runs(self, ip: Inode, off: int, length: int):
        """Bytes of ``[off, off+length)`` (clipped at EOF) as coalesced runs ``(lens, vals)``."""
        end = min(off + length, ip.size)
        if end <= off:
            return EMPTY, EMPTY
        b0, b1 = off // BS, _ceil_blocks(end)
        f, n, c = self._block_cids(ip, b0, b1)
        lens, vals, pos = [], [], []
        uc = np.unique(c)
        runs_of = {int(k): self.contents.runs(int(k)) for k in uc}
        for fi, ni, ci in zip(f.tolist(), n.tolist(), c.tolist(), strict=False):
            r = runs_of[ci]
            if len(r) == 1:
                lens.append(np.array([ni * BS], _I64))
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
        e = np.minimum(P + L, end)
        ok = e > s
        L, V = (e - s)[ok], V[ok]
        if L.shape[0] > 1:
            head = np.ones(L.shape[0], dtype=bool)
            head[1:] = V[1:] != V[:-1]
            idx = np.flatnonzero(head)
            L = np.add.reduceat(L, idx)
            V = V[idx]
        return L, V

    def compare(self, ino_a: int, off_a: int, ino_b: int, off_b: int, length: int) -> bool:
        """Whether the two ranges read (clipped at EOF) the same bytes."""
        la, va = self._byte_runs(self._ip(ino_a), off_a, length)
        lb, vb = self._byte_runs(self._ip(ino_b), off_b, length)
        return bool(np.array_equal(la, lb) and np.array_equal(va, vb))

    def block_content(self, pblock: int) -> tuple[tuple[int, int, int], ...]:
        """Byte runs ``((off, len, byte), ...)`` held by a physical block."""
        return self.contents.runs(self._cid_of(pblock))

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

    def check_invariants(self) -> None:
        """Assert refcount conservation: for every physical block, its refcount equals the
        number of data-fork references; free space and references are disjoint and cover
        exactly the used blocks. Vectorised over runs."""
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
        assert used + self._nfree == self.nblocks, (
            f"used {used} + free {self._nfree} != {self.nblocks}"
        )
        assert int(self.free.length.sum()) == self._nfree
        if s.shape[0] and len(self.free):
            qi, ss, sl, rr = segments(self.free.start, self.free.length, s, ln)
            assert (rr < 0).all(), "a referenced block is on the free list"
        for ip in self.inodes.values():
            e = ip.ext
            if len(e) > 1:
                assert (e.start[1:] >= e.start[:-1] + e.length[:-1]).all()


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
