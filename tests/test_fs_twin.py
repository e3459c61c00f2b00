"""Differential tests of the compiled filesystem (sim.fs.compiled) against FileSystem.

Random op sequences shaped like the hunt's (sim.hunt.search.generate_op: page multiples under
a few pages, unaligned bytes, 2 MiB writes at 0, whole-file and range clones, same-file
clones, dedupe of equal and unequal data, write faults and stores) plus fallocate, truncates
to the extreme sizes and out-of-range values run on both; after every call: errno, every slot
(inode, size, reflink flag, extents), refcounts, free runs, free count, next inode, contents
(every written block, whole small files, and the bytes, byte runs and md5 of the ranges the
call touched, also near 2**63), the change rows, and the results of iomap / rmap /
shared_pages. The compiled filesystem keeps no statistics (of FileSystem.counters() only
``free_blocks`` is compared). Then whole hunt episodes (generate_op on a Session over a
FileSystem subclass that mirrors every call the DAX layer makes, faults, stores and the rmap
of memory failures included, on the compiled state). The compiled state of each device size
is reused across examples (fs_reset leaves stale block bytes: never observable).
"""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sim.fs import FileSystem, FsError
from sim.fs.compiled import (
    ERR_OVERFLOW,
    ERRNO_OF,
    fs_alloc_blocks,
    fs_clone,
    fs_cow_blocks,
    fs_create,
    fs_dedupe,
    fs_fallocate,
    fs_iomap,
    fs_new,
    fs_punch,
    fs_pwrite,
    fs_read,
    fs_refcounts_ok,
    fs_reset,
    fs_rmap,
    fs_shared_pages,
    fs_store,
    fs_truncate,
    fs_unlink,
    fs_unshare,
    fs_zero_range,
)
from sim.hunt.search import _shared_pages

PAGE = 4096
NSLOTS = 3
BIG = (1 << 63) - 1
_STATES: dict[tuple, object] = {}
_BUF = np.zeros(1 << 22, np.uint8)


def _state(nblocks, caps=(64, 256), su=0):
    """A reused state per device size, capacities (extents per file, free runs) and stripe
    unit (reset: exercises fs_reset on a dirty ``data``)."""
    s = _STATES.get((nblocks, caps, su))
    if s is None:
        s = _STATES[nblocks, caps, su] = fs_new(nblocks, NSLOTS, *caps, stripe_unit_blocks=su)
    else:
        fs_reset(s)
    return s


# ---------------------------------------------------------------------- strategies
slot = st.integers(0, NSLOTS - 1)
byte = st.sampled_from([0x61, 0x62, 0x61, 0x00, 0x7A])
weird = st.sampled_from([-1, -PAGE, BIG, BIG - 10, BIG - PAGE, BIG - 5 * PAGE + 1, 1 << 62])


def _offlen(maxpages=12):
    return st.one_of(
        st.tuples(
            st.integers(0, maxpages).map(lambda x: x * PAGE),
            st.integers(1, 9).map(lambda x: x * PAGE),
        ),
        st.tuples(st.integers(0, maxpages * PAGE), st.integers(1, 3 * PAGE)),
        st.tuples(st.integers(0, maxpages).map(lambda x: x * PAGE), st.integers(0, 3 * PAGE)),
        st.tuples(weird, st.integers(0, 3 * PAGE)),
        st.tuples(st.integers(0, maxpages * PAGE), weird),
    )


op = st.one_of(
    st.tuples(st.just("create"), slot),
    st.tuples(st.just("create"), slot),
    st.tuples(st.just("unlink"), slot),
    st.tuples(st.just("pwrite"), slot, _offlen(), byte),
    st.tuples(st.just("pwrite"), slot, _offlen(), byte),
    st.tuples(st.just("pwrite"), slot, st.just((0, 512 * PAGE)), byte),
    st.tuples(
        st.just("truncate"),
        slot,
        st.one_of(
            st.integers(0, 8 * PAGE + 1),
            st.integers(0, 8).map(lambda x: x * PAGE),
            st.sampled_from([-1, -PAGE, 1 << 40, BIG - 3, BIG - 1, BIG]),
        ),
    ),
    st.tuples(st.just("punch"), slot, _offlen()),
    st.tuples(st.just("falloc"), slot, _offlen(), st.integers(0, 1)),
    st.tuples(st.just("zero"), slot, _offlen(), st.integers(0, 1)),
    st.tuples(st.just("unshare"), slot, _offlen()),
    st.tuples(
        st.just("clone"),
        slot,
        slot,
        st.one_of(
            st.just((0, 0, 0)),
            st.tuples(
                st.integers(0, 10).map(lambda x: x * PAGE),
                st.integers(0, 12).map(lambda x: x * PAGE),
                st.integers(0, 8).map(lambda x: x * PAGE),
            ),
            st.tuples(
                st.integers(0, 10 * PAGE), st.integers(0, 12 * PAGE), st.integers(0, 4 * PAGE)
            ),
            st.tuples(weird, st.integers(0, 4).map(lambda x: x * PAGE), st.integers(0, 4 * PAGE)),
            st.tuples(st.just(0), weird, st.integers(0, 4).map(lambda x: x * PAGE)),
            st.tuples(st.just(0), st.just(0), weird),
        ),
    ),
    st.tuples(
        st.just("clone"),
        slot,
        slot,
        st.tuples(
            st.integers(0, 10).map(lambda x: x * PAGE),
            st.integers(0, 12).map(lambda x: x * PAGE),
            st.integers(0, 8).map(lambda x: x * PAGE),
        ),
    ),
    st.tuples(
        st.just("dedupe"),
        slot,
        slot,
        st.one_of(
            st.tuples(
                st.integers(0, 10).map(lambda x: x * PAGE),
                st.integers(0, 10).map(lambda x: x * PAGE),
                st.integers(0, 8).map(lambda x: x * PAGE),
            ),
            st.tuples(
                st.integers(0, 10 * PAGE), st.integers(0, 10 * PAGE), st.integers(0, 4 * PAGE)
            ),
            st.tuples(weird, st.just(0), st.integers(0, 4 * PAGE)),
        ),
    ),
    st.tuples(
        st.just("mwrite"),
        slot,
        st.tuples(st.integers(0, 12 * PAGE), st.integers(1, 2 * PAGE)),
        byte,
    ),
    st.tuples(st.just("store"), slot, _offlen(), byte),
    # offsets drawn relative to the current sizes, as generate_op does
    st.tuples(
        st.just("clone_r"),
        slot,
        slot,
        st.integers(0, 1 << 20),
        st.integers(0, 1 << 20),
        st.integers(0, 1 << 20),
    ),
    st.tuples(
        st.just("clone_r"),
        slot,
        slot,
        st.integers(0, 1 << 20),
        st.integers(0, 1 << 20),
        st.integers(0, 1 << 20),
    ),
    st.tuples(
        st.just("dedupe_r"),
        slot,
        slot,
        st.integers(0, 1 << 20),
        st.integers(0, 1 << 20),
        st.integers(0, 1 << 20),
    ),
    st.tuples(
        st.just("dedupe_r"),
        slot,
        slot,
        st.integers(0, 1 << 20),
        st.integers(0, 1 << 20),
        st.integers(0, 1 << 20),
    ),
    st.tuples(
        st.just("mwrite_r"),
        slot,
        st.integers(0, 1 << 20),
        st.integers(1, 2 * PAGE),
        st.booleans(),
        byte,
    ),
    st.tuples(
        st.just("mwrite_r"),
        slot,
        st.integers(0, 1 << 20),
        st.integers(1, 2 * PAGE),
        st.booleans(),
        byte,
    ),
    st.tuples(
        st.just("iomap"), slot, st.integers(-2, 600), st.sampled_from([1, 1, 2, 8, 512, 0, -1])
    ),
    st.tuples(st.just("alloc"), slot, st.integers(0, 12), st.integers(0, 8)),
    st.tuples(st.just("cow"), slot, st.integers(0, 12), st.integers(0, 8)),
)


# ---------------------------------------------------------------------- driver
def _py(fn, *a, **k):
    try:
        return 0, fn(*a, **k)
    except FsError as e:
        return ERRNO_OF[e.errno], None


def _changes(ch, slot_of):
    rows = [(0, slot_of[i], f, n) for i, f, n in ch.remapped]
    rows += [(1, slot_of[i], f, n) for i, f, n in ch.newly_mapped]
    return rows


def _jchanges(s):
    return [tuple(int(x) for x in r) for r in s.chg[: s.scal[3]]]


def _refcounts(fs):
    """FileSystem's refcount of every block: 0 in a free run, a refcount record's count,
    else 1 (a block mapped once has no record)."""
    rc = np.ones(fs.nblocks, np.int64)
    for a, n in zip(fs.free.start.tolist(), fs.free.length.tolist(), strict=True):
        rc[a : a + n] = 0
    r = fs.refc
    for a, n, c in zip(r.start.tolist(), r.length.tolist(), r.cols[0].tolist(), strict=True):
        rc[a : a + n] = c
    return rc


def _extents(ip):
    """``(starts, lengths, pblocks, states)`` of an inode's data fork."""
    e = ip.ext
    return e.start.tolist(), e.length.tolist(), e.cols[0].tolist(), e.cols[1].tolist()


def _window(fs, s, k, ino, off, length):
    """The bytes of ``[off, off + length)`` of slot ``k`` (clipped at EOF) read from both, as
    bytes, byte runs, md5 and :meth:`FileSystem.compare` of the range with itself."""
    buf = _BUF
    n = fs_read(s, k, off, length, buf)
    assert n >= 0
    want = buf[:n].tobytes()
    assert fs.pread(ino, off, length) == want, (k, off, length)
    lens, vals = fs.byte_runs(ino, off, length)
    assert (lens > 0).all()
    assert (
        b"".join(bytes([v]) * ln for ln, v in zip(lens.tolist(), vals.tolist(), strict=True))
        == want
    )
    assert fs.byte_runs_list(ino, off, length) == (lens.tolist(), vals.tolist())
    assert fs.md5(ino, off, n) == hashlib.md5(want).hexdigest()
    assert fs.compare(ino, off, ino, off, n)


def _touched(o, size):
    """Byte ranges ``(off, length)`` near the edges of what op ``o`` can have changed (at
    most 12 KiB each), inside a file of ``size`` bytes."""
    kind = o[0]
    if kind in ("pwrite", "store", "punch", "zero", "unshare", "falloc", "mwrite"):
        off, ln = o[2]
    elif kind in ("clone", "dedupe"):
        _soff, off, ln = o[3]
        if ln == 0:
            ln = size - off
    elif kind == "truncate":
        off, ln = o[2], 0
    else:
        return []
    out = []
    for a in (off - PAGE, off + ln - 2 * PAGE, size - 2 * PAGE):
        a = min(max(a, 0), max(size - 1, 0))
        out.append((a, min(3 * PAGE, size - a)))
    return out


def _compare_state(fs, s, check_data=True, touched=()):
    assert fs._next_ino == s.scal[1]
    assert fs._nfree == s.scal[0] == fs.counters()["free_blocks"]
    nr = s.scal[4]
    assert fs.free.start.tolist() == s.fr_s[:nr].tolist()
    assert fs.free.length.tolist() == s.fr_l[:nr].tolist()
    assert _refcounts(fs).tolist() == s.rc.tolist()
    buf = _BUF
    for k in range(NSLOTS):
        ino = fs.names.get(f"f{k}")
        if ino is None:
            assert s.ino[k] == -1
            continue
        ip = fs.inodes[ino]
        assert s.ino[k] == ino
        assert s.size[k] == ip.size
        assert bool(s.reflink[k]) == ip.reflink
        ne = s.next[k]
        e = s.ext[k, :ne]
        S, N, P, T = _extents(ip)
        assert S == e[:, 0].tolist()
        assert N == e[:, 1].tolist()
        assert P == e[:, 2].tolist()
        assert T == e[:, 3].tolist()
        if not check_data:
            continue
        # contents of every written block
        for f0, n, p0, t in zip(S, N, P, T, strict=True):
            if t == 2:
                for p in range(p0, p0 + n):
                    got = (
                        bytes([int(s.ub[p])]) * 4096 if s.ub[p] >= 0 else s.data[p].tobytes()
                    )  # a page descriptor, or the bytes
                    assert fs.contents.data(fs._cid_of(p)) == got, (k, f0, p)
        # read(2) of the whole file (small files) and of a window
        if ip.size <= buf.shape[0]:
            got = fs_read(s, k, 0, ip.size, buf)
            assert got == ip.size
            assert fs.pread(ino, 0, ip.size) == buf[:got].tobytes()
        n = fs_read(s, k, 3000, 9000, buf)
        assert fs.pread(ino, 3000, 9000) == buf[:n].tobytes()
        # the whole file as byte runs (a file near 2**63 bytes keeps its last hole) and
        # the ranges the last call touched
        lens, vals = fs.byte_runs(ino, 0, ip.size + 10)
        assert int(lens.sum()) == ip.size and (lens > 0).all()
        if ip.size and vals.shape[0]:
            assert vals[-1] == buf[fs_read(s, k, ip.size - 1, 1, buf) - 1]
        for off, ln in touched:
            _window(fs, s, k, ino, off, ln)


def _absent_call(s, o, iom):
    """The compiled call of op ``o`` on a slot without a file (FileSystem: ENOENT)."""
    kind, k = o[0], o[1]
    if kind == "pwrite":
        return fs_pwrite(s, k, 0, 1, 1)
    if kind == "truncate":
        return fs_truncate(s, k, 0)
    if kind == "punch":
        return fs_punch(s, k, 0, 1)
    if kind == "falloc":
        return fs_fallocate(s, k, 0, 1, 0)
    if kind == "zero":
        return fs_zero_range(s, k, 0, 1, 0)
    if kind == "unshare":
        return fs_unshare(s, k, 0, 1)
    if kind == "store":
        return fs_store(s, k, 0, 1, 1)
    if kind in ("mwrite", "alloc"):
        return fs_alloc_blocks(s, k, 0, 1)
    if kind == "cow":
        return fs_cow_blocks(s, k, 0, 1)
    if kind == "iomap":
        return fs_iomap(s, k, 0, 1, iom)
    if kind == "clone":
        return fs_clone(s, k, o[2], 0, 0, 0)
    return fs_dedupe(s, k, o[2], 0, 0, 0)


def _resolve(fs, o):
    """Ops drawn relative to the current sizes (generate_op's clone, dedupe, mwrite)."""
    kind = o[0]
    if kind not in ("clone_r", "dedupe_r", "mwrite_r"):
        return o

    def size(k):
        ino = fs.names.get(f"f{k}")
        return fs.inodes[ino].size if ino is not None else 0

    if kind == "mwrite_r":
        _, k, x, ln, aligned, b = o
        sz = size(k)
        off = (x % max(-(-sz // PAGE), 1)) * PAGE + (0 if aligned else x % PAGE)
        return ("mwrite", k, (off, ln), b)
    _, dst, src, x, y, z = o
    ssize = size(src)
    if kind == "clone_r":
        if dst != src and x % 3 == 0:
            return ("clone", dst, src, (0, 0, 0))
        soff = (x % max(-(-ssize // PAGE), 1)) * PAGE
        full = (ssize - soff) // PAGE
        ln = 0 if full <= 0 or y % 3 == 0 else (y % min(full, 8) + 1) * PAGE
        doff = (z % 8) * PAGE
        if dst == src:
            doff = soff + max(ln, ssize - soff) + (z % 4) * PAGE
            doff = min(-(-doff // PAGE) * PAGE, BIG)  # (int64 arguments)
        return ("clone", dst, src, (soff, doff, ln))
    dsize = size(dst)
    nb = min(ssize, dsize) // PAGE
    if nb == 0:
        return ("dedupe", dst, src, (0, 0, min(ssize, dsize)))
    soff = (x % nb) * PAGE
    doff = soff if y % 2 == 0 else (y % nb) * PAGE
    room = min(ssize - soff, dsize - doff) // PAGE
    if room <= 0:
        return ("dedupe", dst, src, (soff, doff, z % (2 * PAGE)))
    return ("dedupe", dst, src, (soff, doff, (z % min(room, 8) + 1) * PAGE))


def _run(nblocks, ops, check_every=True, caps=(64, 256), su=0):
    """Run ``ops`` on a FileSystem and the compiled state (stripe unit ``su`` blocks),
    comparing after every call; the FileSystem (``max_extents``: the most data-fork records
    a file had)."""
    fs = FileSystem(nblocks, stripe_unit_blocks=su)
    fs.max_extents = 0
    fs.overflowed = True  # until the end is reached
    s = _state(nblocks, caps, su)
    slot_of: dict[int, int] = {}
    iom = np.zeros(4, np.int64)
    rb = np.zeros((64, 2), np.int64)
    shp = np.zeros(1 << 14, np.int64)
    for o in ops:
        o = _resolve(fs, o)
        kind = o[0]
        k = o[1]
        path = f"f{k}"
        ino = fs.names.get(path)
        ch = None
        if kind == "create":
            i = fs.create(path)
            slot_of[i] = k
            assert fs_create(s, k) == i
            err = e = 0
        elif kind == "unlink":
            e, ch = _py(fs.unlink, path)
            err = fs_unlink(s, k)
            assert err == e
        elif ino is None:
            # every other call needs the file: ENOENT (FileSystem's lookup / _ip)
            assert _absent_call(s, o, iom) == ERRNO_OF["ENOENT"]
            continue
        elif kind == "pwrite":
            (off, ln), b = o[2], o[3]
            e, ch = _py(fs.pwrite, ino, off, ln, b)
            err = fs_pwrite(s, k, off, ln, b)
        elif kind == "store":
            (off, ln), b = o[2], o[3]
            e, _ = _py(fs.store, ino, off, ln, b)
            err = fs_store(s, k, off, ln, b)
        elif kind == "mwrite":
            (off, ln), b = o[2], o[3]
            fb, nb = off // PAGE, -(-(off + ln) // PAGE) - off // PAGE
            e, ch = _py(fs.alloc_blocks, ino, fb, nb)
            err = fs_alloc_blocks(s, k, fb, nb)
            assert err == e
            if err == ERR_OVERFLOW:
                return fs
            if e == 0:
                assert _jchanges(s) == _changes(ch, slot_of)
            e, ch = _py(fs.cow_blocks, ino, fb, nb)
            err = fs_cow_blocks(s, k, fb, nb)
            assert err == e
            if err == ERR_OVERFLOW:
                return fs
            if e == 0:
                assert _jchanges(s) == _changes(ch, slot_of)
            e, ch = _py(fs.store, ino, off, ln, b)
            err = fs_store(s, k, off, ln, b)
            ch = None
        elif kind == "truncate":
            e, ch = _py(fs.truncate, ino, o[2])
            err = fs_truncate(s, k, o[2])
        elif kind == "punch":
            off, ln = o[2]
            e, ch = _py(fs.punch, ino, off, ln)
            err = fs_punch(s, k, off, ln)
        elif kind == "zero":
            (off, ln), keep = o[2], o[3]
            e, ch = _py(fs.zero_range, ino, off, ln, keep_size=bool(keep))
            err = fs_zero_range(s, k, off, ln, keep)
        elif kind == "falloc":
            (off, ln), keep = o[2], o[3]
            e, ch = _py(fs.fallocate, ino, off, ln, keep_size=bool(keep))
            err = fs_fallocate(s, k, off, ln, keep)
        elif kind == "unshare":
            off, ln = o[2]
            e, ch = _py(fs.unshare, ino, off, ln)
            err = fs_unshare(s, k, off, ln)
        elif kind in ("clone", "dedupe"):
            src = o[2]
            sino = fs.names.get(f"f{src}")
            soff, doff, ln = o[3]
            jf = fs_clone if kind == "clone" else fs_dedupe
            if sino is None:
                e = ERRNO_OF["ENOENT"]
            elif kind == "clone":
                e, ch = _py(fs.clone, ino, sino, src_off=soff, dst_off=doff, length=ln)
            else:
                e, ch = _py(fs.dedupe, ino, sino, soff, doff, ln)
            err = jf(s, k, src, soff, doff, ln)
        elif kind == "iomap":
            fb, nb = o[2], o[3]
            want = fs.iomap(ino, fb, nb)
            err = e = fs_iomap(s, k, fb, nb, iom)
            assert (iom[0], iom[1], iom[2], bool(iom[3])) == want
        elif kind == "alloc":
            e, ch = _py(fs.alloc_blocks, ino, o[2], o[3])
            err = fs_alloc_blocks(s, k, o[2], o[3])
        elif kind == "cow":
            e, ch = _py(fs.cow_blocks, ino, o[2], o[3])
            err = fs_cow_blocks(s, k, o[2], o[3])
        else:
            raise AssertionError(kind)
        assert err == e, (o, err, e)
        if err == ERR_OVERFLOW:
            return fs
        assert s.scal[2] == 0
        if e == 0 and ch is not None:
            assert _jchanges(s) == _changes(ch, slot_of), o
        if check_every:
            ino = fs.names.get(path)
            size = fs.inodes[ino].size if ino is not None else 0
            _compare_state(fs, s, touched=_touched(o, size))
        assert fs_refcounts_ok(s)
        fs.max_extents = max([fs.max_extents] + [len(ip.ext) for ip in fs.inodes.values()])
        # queries: shared pages of the file, rmap of a mapped block
        ino = fs.names.get(path)
        if ino is not None:
            ip = fs.inodes[ino]
            sess = SimpleNamespace(dax=SimpleNamespace(fs=fs))
            want = _shared_pages(sess, path, ip.size)
            n = fs_shared_pages(s, k, ip.size, shp)
            assert shp[:n].tolist() == want
            _S, N, P, _T = _extents(ip)
            if P:
                p = P[len(P) // 2] + N[len(N) // 2] // 2
                n = fs_rmap(s, p, rb)
                got = [(int(r[0]), int(r[1])) for r in rb[:n]]
                assert got == [(slot_of[i], f) for i, f in fs.rmap(p)]
    _compare_state(fs, s)
    fs.check_invariants()
    assert fs_refcounts_ok(s)
    fs.overflowed = False
    return fs


#: A file of 40 one-page extents truncated to 2**63 - 2 bytes: FileSystem.byte_runs takes
#: its array path there, whose end of a run once passed 2**63 and dropped the file's last hole.
_HUGE_FRAGMENTED = [("pwrite", 0, (2 * i * PAGE, PAGE), 0x61 + i % 3) for i in range(40)] + [
    ("truncate", 0, BIG - 1),
    ("pwrite", 1, (BIG - 5 * PAGE + 1, 3 * PAGE), 0x62),
    ("truncate", 1, BIG),
    ("clone", 1, 0, (0, 0, 0)),
]


@settings(max_examples=400, deadline=None, derandomize=True)
@example((64, 0), [("truncate", 0, BIG - 1)])  # byte_runs of a file of holes near 2**63
@example((300, 0), _HUGE_FRAGMENTED)
@example((8192, 512), [("pwrite", 0, (0, 512 * PAGE), 0x61)] * 2)
@given(
    st.sampled_from(
        [
            (64, 0),
            (64, 0),
            (100, 0),
            (300, 0),
            (8192, 0),
            (64, 4),
            (300, 8),
            (8192, 16),
            (8192, 512),
        ]
    ),
    st.lists(op, min_size=10, max_size=60),
)
def test_jit_fs_matches_filesystem(geometry, ops):
    """Device sizes, and stripe units (in blocks) from 4 (allocations at EOF of 4+ blocks
    are aligned: most of them here) to the rig's 512."""
    nblocks, su = geometry
    ops = [("create", 0), ("create", 1)] + ops
    _run(nblocks, ops, su=su)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["pwrite", "clone", "punch", "pwrite"]),
            slot,
            slot,
            st.integers(0, 12),
            st.integers(1, 4),
            byte,
        ),
        min_size=5,
        max_size=60,
    )
)
def test_jit_fs_reflink_heavy(steps):
    """Many clones and small writes on page boundaries: fragmented extents, shared runs with
    changing refcounts, CoW copy-around, the allocator fallback on a small device."""
    ops = [
        ("create", 0),
        ("create", 1),
        ("create", 2),
        ("pwrite", 0, (0, 6 * PAGE), 0x61),
        ("pwrite", 1, (0, 3 * PAGE), 0x62),
    ]
    for kind, a, b, x, y, v in steps:
        if kind == "pwrite":
            ops.append(("pwrite", a, (x * PAGE + (v % 3) * 100, y * PAGE), v))
        elif kind == "punch":
            ops.append(("punch", a, (x * PAGE, y * PAGE)))
        else:
            ops.append(("clone", a, b, (x * PAGE, ((x + y + 3) % 13) * PAGE, y * PAGE)))
    _run(96, ops)


def test_jit_fs_dedupe_equal_and_unequal():
    ops = [
        ("create", 0),
        ("create", 1),
        ("pwrite", 0, (0, 4 * PAGE), 0x61),
        ("pwrite", 1, (0, 4 * PAGE), 0x61),
        ("dedupe", 1, 0, (0, 0, 4 * PAGE)),  # equal: shared
        ("pwrite", 1, (PAGE + 7, 10), 0x62),
        ("dedupe", 1, 0, (0, 0, 4 * PAGE)),  # EBADE
        ("dedupe", 1, 0, (2 * PAGE, 2 * PAGE, 2 * PAGE)),
        ("truncate", 0, 3 * PAGE + 5),
        ("truncate", 1, 3 * PAGE + 5),
        ("dedupe", 1, 0, (0, 0, 3 * PAGE + 5)),
        ("clone", 0, 0, (0, 5 * PAGE, 0)),
        ("mwrite", 0, (5 * PAGE + 3, 5000), 0x63),
        ("unlink", 0),
        ("unlink", 1),
    ]
    _run(64, ops)


def test_jit_fs_enospc_and_fallback():
    ops = [
        ("create", 0),
        ("create", 1),
        ("create", 2),
        ("pwrite", 0, (0, 512 * PAGE), 0x61),  # ENOSPC on 64 blocks
        ("pwrite", 0, (0, 20 * PAGE), 0x61),
        ("pwrite", 1, (0, 10 * PAGE), 0x62),
        ("punch", 0, (2 * PAGE, 3 * PAGE)),
        ("punch", 0, (9 * PAGE, 2 * PAGE)),
        ("pwrite", 2, (0, 40 * PAGE), 0x63),  # fallback: largest runs
        ("zero", 1, (4 * PAGE, 100 * PAGE), 0),
        ("clone", 2, 0, (0, 0, 0)),
        ("pwrite", 2, (PAGE, 30 * PAGE), 0x64),
        ("unshare", 2, (0, 40 * PAGE)),
        ("unlink", 0),
        ("unlink", 1),
        ("unlink", 2),
    ]
    _run(64, ops)


def _creates():
    return [("create", k) for k in range(NSLOTS)]


def test_jit_fs_rows_cut_where_refcount_changes():
    """One extent whose blocks have refcounts 3, 2, 3: the write-fault CoW and unshare work
    on the rows cut at each change."""
    ops = _creates() + [
        ("pwrite", 0, (0, 6 * PAGE), 0x61),
        ("clone", 1, 0, (0, 0, 6 * PAGE)),
        ("clone", 2, 0, (0, 0, 2 * PAGE)),
        ("clone", 2, 0, (4 * PAGE, 4 * PAGE, 2 * PAGE)),
    ]
    fs = _run(64, ops)
    ino = fs.lookup("f0")
    _f, n, _p, _st, c = fs.bmap_arrays(ino, 0, 6)
    assert (n.tolist(), c.tolist()) == ([2, 2, 2], [3, 2, 3])
    assert fs.extent_count(ino) == 1
    _run(64, ops + [("cow", 0, 1, 4), ("unshare", 1, (100, 5 * PAGE))])


def test_jit_fs_allocation_goal_after_neighbour_taken():
    """Interleaved allocations: the goal (the block after the previous file block) is
    taken, so the first free run at or after it is used, then the largest run when none
    fits (and ENOSPC on the last write)."""
    ops = _creates()
    for k in range(6):
        ops += [
            ("pwrite", 0, (2 * k * PAGE, PAGE), 1),
            ("pwrite", 1, ((2 * k + 1) * PAGE, PAGE), 2),
        ]
    ops += [
        ("punch", 0, (2 * PAGE, 2 * PAGE)),
        ("pwrite", 2, (0, 3 * PAGE), 3),
        ("pwrite", 0, (11 * PAGE, 5 * PAGE), 4),
        ("pwrite", 1, (40 * PAGE, 30 * PAGE), 5),
    ]
    fs = _run(40, ops)
    assert fs.bmap(fs.lookup("f0"), 0, 12)[0].pblock == 0


def test_jit_fs_sparse_huge_offsets():
    """Blocks at 1 TiB and near the maximum file size, a whole-file clone of a sparse file,
    fallocate -k near 2**62."""
    ops = _creates() + [
        ("pwrite", 0, (1 << 40, 3 * PAGE + 5), 0x61),
        ("pwrite", 0, (0, 100), 0x62),
        ("clone", 1, 0, (0, 0, 0)),
        ("punch", 1, ((1 << 40) + PAGE, 1 << 30)),
        ("falloc", 2, ((1 << 62) - PAGE, 2 * PAGE), 1),
        ("truncate", 0, 5),
        ("truncate", 2, 0),
    ]
    _run(32, ops)


def test_jit_fs_unwritten_remap_rules():
    """An unwritten source over an unwritten destination stays; over a written destination
    it punches it; a hole source punches the destination."""
    ops = _creates() + [
        ("falloc", 0, (0, 4 * PAGE), 0),
        ("pwrite", 0, (3 * PAGE, PAGE), 0x61),
        ("falloc", 1, (0, 2 * PAGE), 0),
        ("pwrite", 1, (2 * PAGE, 4 * PAGE), 0x62),
        ("clone", 1, 0, (0, 0, 4 * PAGE)),
        ("punch", 0, (0, PAGE)),
        ("clone", 1, 0, (0, 0, 0)),
    ]
    fs = _run(32, ops)
    assert fs.bmap(fs.lookup("f1"), 0, 1)[0].pblock == -1


def _fragmenting_ops(rng: np.random.Generator, n: int) -> list:
    """Interleaved one-page writes to f0 and f1 (one extent per page), then ``n`` random
    writes, clones, punches, CoW, fallocates, zeroes, dedupes, unshares and truncates."""
    ops = _creates() + [("pwrite", 2, (0, 2 * PAGE + 100), 0x62)]
    for b in range(48):
        for k in (0, 1):
            ops.append(("pwrite", k, ((2 * b + k) * PAGE, PAGE), 0x41 + b % 3))
    r = rng.integers
    for _ in range(n):
        x = rng.random()
        k, q = int(r(NSLOTS)), int(r(NSLOTS))
        if x < 0.35:
            off = int(r(128)) * PAGE + int(rng.choice([0, 0, 100]))
            ops.append(("pwrite", k, (off, int(r(1, 4)) * PAGE - int(rng.choice([0, 7]))), 0x61))
        elif x < 0.5:
            ops.append(("clone", k, q, (int(r(40)) * PAGE, int(r(64)) * PAGE, int(r(9)) * PAGE)))
        elif x < 0.6:
            ops.append(("punch", k, (int(r(64)) * PAGE, int(r(1, 5)) * PAGE)))
        elif x < 0.7:
            ops.append(("cow", k, int(r(64)), int(r(1, 9))))
        elif x < 0.75:
            ops.append(("falloc", k, (int(r(80)) * PAGE, int(r(1, 5)) * PAGE), int(r(2))))
        elif x < 0.8:
            ops.append(("alloc", k, int(r(64)), int(r(1, 9))))
        elif x < 0.85:
            ops.append(("zero", k, (int(r(64 * PAGE)), int(r(1, 6 * PAGE))), int(r(2))))
        elif x < 0.9:
            ops.append(
                ("dedupe", k, q, (int(r(16)) * PAGE, int(r(16)) * PAGE, int(r(1, 5)) * PAGE))
            )
        elif x < 0.95:
            ops.append(("unshare", k, (int(r(64 * PAGE)), int(r(1, 9 * PAGE)))))
        elif x < 0.98:
            ops.append(("truncate", k, int(r(70 * PAGE))))
        else:
            ops += [("unlink", k), ("create", k)]
    return ops


@pytest.mark.parametrize("seed", range(6))
def test_jit_fs_fragmented_files(seed):
    """Long sequences over files of more than 32 extents: FileSystem's array paths (its
    list fast paths stop at 32 runs) against the compiled filesystem, state by state; seeds
    4 and 5 on filesystems with a stripe unit (4 and 8 blocks: aligned allocations at EOF in
    fragmented free space)."""
    ops = _fragmenting_ops(np.random.default_rng(seed), 300)
    su = (0, 0, 0, 0, 4, 8)[seed]
    fs = _run(400 if seed % 2 else 8192, ops, caps=(512, 1024), su=su)
    assert not fs.overflowed and fs.max_extents > 32


def test_jit_fs_overflow_flag():
    s = fs_new(256, 2, ext_cap=2)
    fs_create(s, 0)
    assert fs_pwrite(s, 0, 0, PAGE, 0x61) == 0
    assert fs_pwrite(s, 0, 2 * PAGE, PAGE, 0x61) == 0
    assert s.scal[2] == 0
    assert fs_pwrite(s, 0, 4 * PAGE, PAGE, 0x61) == ERR_OVERFLOW
    assert s.scal[2] == 1
    fs_reset(s)
    assert s.scal[2] == 0
    s = fs_new(64, 2, free_cap=1)
    fs_create(s, 0)
    assert fs_pwrite(s, 0, 0, 4 * PAGE, 0x61) == 0
    assert fs_punch(s, 0, PAGE, PAGE) == ERR_OVERFLOW  # a second free run
    assert s.scal[2] == 1
    s = fs_new(64, 2)
    fs_create(s, 0)
    fs_pwrite(s, 0, 0, 4 * PAGE, 0x61)
    assert fs_rmap(s, 1, np.zeros((0, 2), np.int64)) == ERR_OVERFLOW
    assert fs_read(s, 0, 0, 100, np.zeros(10, np.uint8)) == ERR_OVERFLOW


# ---------------------------------------------------------------------- hunt episodes
class _MirrorFS(FileSystem):
    """FileSystem that also runs every top-level call the DAX layer makes on the
    compiled state and compares errno, result, change rows and the whole state."""

    def __init__(self, nblocks, **kw):
        super().__init__(nblocks, **kw)
        self.jst = _state(nblocks)
        self.slot_of: dict[int, int] = {}
        self.depth = 0
        self.overflowed = None
        self.ncalls = 0
        self.calls: dict[str, int] = {}
        self.iom = np.zeros(4, np.int64)
        self.rb = np.zeros((64, 2), np.int64)

    def _mirror(self, name, pycall, jcall):
        if self.depth or self.overflowed:
            return pycall()
        self.depth += 1
        exc = None
        try:
            r = pycall()
            e = 0
        except FsError as x:
            r, e, exc = None, ERRNO_OF[x.errno], x
        finally:
            self.depth -= 1
        err, jres = jcall()
        if err == ERR_OVERFLOW and e != ERR_OVERFLOW:
            # a capacity of the compiled state exceeded (the engine falls back to Python)
            assert self.jst.scal[2] == 1
            self.overflowed = (name, self.jst.next.tolist(), int(self.jst.scal[4]))
            if exc is not None:
                raise exc
            return r
        assert err == e, (name, err, e)
        self.calls[name] = self.calls.get(name, 0) + 1
        if e == 0 and jres is not None:
            assert jres == r, (name, jres, r)
        if e == 0 and hasattr(r, "remapped"):
            assert _jchanges(self.jst) == _changes(r, self.slot_of), name
        self.ncalls += 1
        _compare_state(self, self.jst, check_data=self.ncalls % 16 == 0 or name != "iomap")
        if exc is not None:
            raise exc
        return r

    def _slot(self, ino):
        return self.slot_of.get(ino, NSLOTS)  # an unknown inode: a slot without a file

    def open(self, path, *, create=False, trunc=False):
        return self.open_ex(path, create=create, trunc=trunc)[0]

    def open_ex(self, path, *, create=False, trunc=False):
        k = int(path[1:])
        existed = path in self.names

        def jcall():
            s = self.jst
            if create:
                ino = fs_create(s, k)
            elif s.ino[k] < 0:
                return ERRNO_OF["ENOENT"], None
            else:
                ino = s.ino[k]
                s.scal[3] = 0  # (no compiled call: no change rows)
            if trunc and existed:
                err = fs_truncate(s, k, 0)
                if err:
                    return err, None
            return 0, int(ino)

        def pycall():
            ino, ch = FileSystem.open_ex(self, path, create=create, trunc=trunc)
            self.slot_of[ino] = k
            return ch

        if self.depth:
            return pycall()
        ch = self._mirror("open", pycall, lambda: (jcall()[0], None))
        return self.names[path], ch

    def unlink(self, path):
        return self._mirror(
            "unlink",
            lambda: FileSystem.unlink(self, path),
            lambda: (fs_unlink(self.jst, int(path[1:])), None),
        )

    def pwrite(self, ino, off, length, byte):
        return self._mirror(
            "pwrite",
            lambda: FileSystem.pwrite(self, ino, off, length, byte),
            lambda: (fs_pwrite(self.jst, self._slot(ino), off, length, byte), None),
        )

    def store(self, ino, off, length, byte):
        return self._mirror(
            "store",
            lambda: FileSystem.store(self, ino, off, length, byte),
            lambda: (fs_store(self.jst, self._slot(ino), off, length, byte), None),
        )

    def truncate(self, ino, size):
        return self._mirror(
            "truncate",
            lambda: FileSystem.truncate(self, ino, size),
            lambda: (fs_truncate(self.jst, self._slot(ino), size), None),
        )

    def punch(self, ino, off, length):
        return self._mirror(
            "punch",
            lambda: FileSystem.punch(self, ino, off, length),
            lambda: (fs_punch(self.jst, self._slot(ino), off, length), None),
        )

    def zero_range(self, ino, off, length, *, keep_size=False):
        return self._mirror(
            "zero_range",
            lambda: FileSystem.zero_range(self, ino, off, length, keep_size=keep_size),
            lambda: (fs_zero_range(self.jst, self._slot(ino), off, length, int(keep_size)), None),
        )

    def unshare(self, ino, off, length, *, keep_size=False):
        assert not keep_size or self.depth
        return self._mirror(
            "unshare",
            lambda: FileSystem.unshare(self, ino, off, length, keep_size=keep_size),
            lambda: (fs_unshare(self.jst, self._slot(ino), off, length), None),
        )

    def clone(self, dst, src, src_off=0, dst_off=0, length=None):
        a = (0, 0, 0) if length is None else (src_off, dst_off, length)
        return self._mirror(
            "clone",
            lambda: FileSystem.clone(
                self, dst, src, src_off=src_off, dst_off=dst_off, length=length
            ),
            lambda: (fs_clone(self.jst, self._slot(dst), self._slot(src), *a), None),
        )

    def dedupe(self, dst, src, src_off, dst_off, length):
        return self._mirror(
            "dedupe",
            lambda: FileSystem.dedupe(self, dst, src, src_off, dst_off, length),
            lambda: (
                fs_dedupe(self.jst, self._slot(dst), self._slot(src), src_off, dst_off, length),
                None,
            ),
        )

    def alloc_blocks(self, ino, fblock, nblocks):
        return self._mirror(
            "alloc_blocks",
            lambda: FileSystem.alloc_blocks(self, ino, fblock, nblocks),
            lambda: (fs_alloc_blocks(self.jst, self._slot(ino), fblock, nblocks), None),
        )

    def cow_blocks(self, ino, fblock, nblocks):
        return self._mirror(
            "cow_blocks",
            lambda: FileSystem.cow_blocks(self, ino, fblock, nblocks),
            lambda: (fs_cow_blocks(self.jst, self._slot(ino), fblock, nblocks), None),
        )

    def iomap(self, ino, fblock, nblocks):
        def jcall():
            err = fs_iomap(self.jst, self._slot(ino), fblock, nblocks, self.iom)
            i = self.iom
            return err, (int(i[0]), int(i[1]), int(i[2]), bool(i[3]))

        return self._mirror("iomap", lambda: FileSystem.iomap(self, ino, fblock, nblocks), jcall)

    def rmap(self, pblock):
        def jcall():
            n = fs_rmap(self.jst, pblock, self.rb)
            inos = {v: i for i, v in self.slot_of.items() if self.jst.ino[v] == i}
            return 0, [(inos[int(r[0])], int(r[1])) for r in self.rb[:n]]

        return self._mirror("rmap", lambda: FileSystem.rmap(self, pblock), jcall)

    def fallocate(self, ino, off, length, *, keep_size=False):
        raise AssertionError("fallocate mode 0 is not part of the compiled filesystem")


@settings(max_examples=24, deadline=None, derandomize=True)
@given(st.integers(0, 2**32 - 1), st.sampled_from([300, 8192]))
def test_jit_fs_mirrors_hunt_episodes(seed, nblocks):
    """Hunt episodes (generate_op on a Session, every op kind, the DAX layer's own calls:
    faults, stores, rmap of memory failures) with the compiled filesystem mirroring each
    filesystem call."""
    from sim.hunt.search import generate_op
    from sim.hunt.session import OP_KINDS, Op, Session

    sess = Session("page-share", nblocks=nblocks, snapshot=False, record=False, fs_class=_MirrorFS)
    rng = np.random.default_rng(seed)
    fs = sess.dax.fs
    for _ in range(250):
        op = generate_op(rng, sess, OP_KINDS, 3)
        if op is not None:
            sess.apply(op)
    for k in range(NSLOTS):
        if fs.exists(f"f{k}"):
            sess.apply(Op("unlink", f"f{k}"))
    assert fs.calls.get("pwrite", 0) > 0
    sess.close()
