"""Semantics of sim.fs: CoW, clone/dedupe rules and errnos, size changes, fallocate modes,
refcount conservation, rmap, device-fill exposure, memory scaling."""

from __future__ import annotations

import hashlib
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.fs import BLOCK_SIZE, HOLE, UNWRITTEN, WRITTEN, FileSystem, FsError

BS = BLOCK_SIZE
K64 = 65536


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def mkfile(fs, path, size, byte):
    ino = fs.create(path)
    fs.pwrite(ino, 0, size, byte)
    return ino


def errno_of(fn, *a, **k):
    with pytest.raises(FsError) as e:
        fn(*a, **k)
    return e.value.errno


# ---------------------------------------------------------------- CoW
def test_write_to_clone_copies_one_block_and_keeps_source():
    fs = FileSystem(4096)
    a = mkfile(fs, "a", 16 * BS, 0x61)
    b = fs.create("b")
    fs.clone(b, a)
    src_md5 = fs.md5(a)
    free0 = fs.free_blocks()
    ch = fs.pwrite(b, 5 * BS + 10, 100, 0x62)
    assert ch.cow_blocks == 1 and ch.blocks_allocated == 1
    assert ch.cow_bytes == BS - 100
    assert fs.free_blocks() == free0 - 1
    assert fs.md5(a) == src_md5
    assert fs.pread(b, 5 * BS + 9, 102) == b"a" + b"b" * 100 + b"a"
    assert ch.remapped == [(b, 5, 1)]
    shared = [e for e in fs.bmap(b, 0, 16) if e.shared]
    assert sum(e.nblocks for e in shared) == 15
    fs.check_invariants()


def test_cow_blocks_full_copy_through_cow_fork():
    fs = FileSystem(1024)
    a = mkfile(fs, "a", 4 * BS, 0x61)
    fs.pwrite(a, 100, 3, 0x7A)
    b = fs.create("b")
    fs.clone(b, a)
    ch = fs.cow_blocks(b, 0, 4)
    assert ch.cow_blocks == 4 and ch.cow_bytes == 4 * BS
    assert fs.cow_fork_allocations == 4 and fs.cow_fork_remaps == 4
    assert all(not e.shared for e in fs.bmap(b, 0, 4))
    assert fs.md5(a) == fs.md5(b)
    fs.store(b, 0, 10, 0x41)
    assert fs.pread(b, 0, 11) == b"A" * 10 + b"a"
    assert fs.pread(a, 0, 1) == b"a"
    assert len(fs.inodes[b].cow) == 0
    fs.check_invariants()


def test_store_needs_private_written_blocks():
    fs = FileSystem(64)
    a = mkfile(fs, "a", BS, 1)
    b = fs.create("b")
    fs.clone(b, a)
    assert errno_of(fs.store, b, 0, 1, 2) == "EFAULT"
    c = fs.create("c")
    fs.truncate(c, 2 * BS)
    assert errno_of(fs.store, c, 0, 1, 2) == "EFAULT"
    ch = fs.alloc_blocks(c, 0, 2)
    assert ch.blocks_allocated == 2 and ch.newly_mapped == [(c, 0, 2)]
    fs.store(c, BS - 1, 2, 9)
    assert fs.pread(c, BS - 2, 4) == b"\0\x09\x09\0"


# ---------------------------------------------------------------- clone rules
def test_clone_argument_rules():
    fs = FileSystem(4096)
    a = mkfile(fs, "a", 4 * K64 + 100, 0x3C)  # generic-518 source
    b = mkfile(fs, "b", 1 << 20, 0xB5)
    before = fs.md5(b)
    assert errno_of(fs.clone, b, a, 0, 512 * 1024, 4 * K64 + 100) == "EINVAL"  # EOF block mid-dest
    assert fs.md5(b) == before
    assert errno_of(fs.clone, b, a, 1, 0, BS) == "EINVAL"  # unaligned source
    assert errno_of(fs.clone, b, a, 0, 7, BS) == "EINVAL"  # unaligned dest
    assert errno_of(fs.clone, b, a, 0, 0, BS + 1) == "EINVAL"  # unaligned length not at EOF
    assert errno_of(fs.clone, b, a, 5 * K64, 0, BS) == "EINVAL"  # source offset past EOF
    assert errno_of(fs.clone, a, a, 0, BS, 2 * BS) == "EINVAL"  # overlapping same file
    assert errno_of(fs.clone, b, a, 0, 0, -1) == "EINVAL"
    # a range running past source EOF is clamped, so the request is shortened: EINVAL
    assert errno_of(fs.clone, b, a, 4 * K64, 0, 2 * BS) == "EINVAL"
    assert fs.md5(b) == before
    fs.check_invariants()


def test_clone_eof_block_lands_at_dest_eof():  # generic-134
    fs = FileSystem(1024)
    f1 = mkfile(fs, "f1", K64 + 37, 0x61)
    f3 = mkfile(fs, "f3", K64 + 37, 0x62)
    ch = fs.clone(f3, f1, K64, K64, 37)
    assert ch.remap_blocks == 1 and ch.blocks_freed == 1
    assert fs.pread(f3, K64 - 1, 100) == b"b" + b"a" * 37
    assert fs.size(f3) == K64 + 37
    fs.check_invariants()


def test_clone_length_zero_means_to_source_eof_and_past_dest_eof():  # generic-181, 515
    fs = FileSystem(8192, fill_byte=0x58)
    a = mkfile(fs, "a", 16 * BS, 0x61)
    b = mkfile(fs, "b", 4 * BS + 5, 0x62)
    ch = fs.clone(b, a, 4 * BS, 32 * BS, 0)
    assert ch.remap_blocks == 12
    assert fs.size(b) == 44 * BS
    data = fs.pread(b, 0, fs.size(b))
    assert data == b"b" * (4 * BS + 5) + bytes(28 * BS - 5) + b"a" * (12 * BS)
    assert fs.clone(b, a, 16 * BS, 0, 0).remap_blocks == 0  # pos_in == EOF: nothing
    assert errno_of(fs.clone, b, a, 17 * BS, 0, 0) == "EINVAL"
    fs.check_invariants()


def test_ficlone_and_self_clone_doubling():  # generic-175, scaled down
    fs = FileSystem(64)
    f = mkfile(fs, "f", BS, 0x61)
    for k in range(12):
        fs.clone(f, f, 0, BS << k, BS << k)
    assert fs.size(f) == BS << 12
    assert fs.extent_count(f) == 1 << 12
    p = fs.bmap(f, 0)[0].pblock
    assert fs.refcount(p) == 1 << 12
    g = fs.create("g")
    fs.clone(g, f)
    assert fs.refcount(p) == 1 << 13
    assert fs.md5(g) == md5(b"a" * (BS << 12))
    assert len(fs.rmap(p)) == 1 << 13
    fs.check_invariants()
    fs.unlink("f")
    fs.unlink("g")
    assert fs.free_blocks() == 64
    fs.check_invariants()


# ---------------------------------------------------------------- dedupe
def test_dedupe_rules():
    fs = FileSystem(4096)
    foo = fs.create("foo")
    fs.pwrite(foo, 0, 524388, 0x6B)
    fs.pwrite(foo, 524388, 256 * 1024, 0xAE)
    bar = mkfile(fs, "bar", 131172, 0x6B)
    h = fs.md5(foo)
    ch = fs.dedupe(foo, bar, 0, K64, 131172)  # generic-517
    assert ch.bytes_deduped == 131172 and ch.remap_blocks == 32
    assert fs.md5(foo) == h
    baz = mkfile(fs, "baz", 100, 0xAE)
    ch = fs.dedupe(foo, baz, 0, 640 * 1024, 100)
    assert ch.bytes_deduped == 100 and ch.remap_blocks == 0
    assert fs.md5(foo) == h
    other = mkfile(fs, "o", 8 * BS, 0x01)
    assert errno_of(fs.dedupe, other, bar, 0, 0, 2 * BS) == "EBADE"
    assert errno_of(fs.dedupe, other, bar, 0, 7 * BS, 2 * BS) == "EINVAL"  # past dest EOF
    assert errno_of(fs.dedupe, other, bar, 200 * 1024, 0, BS) == "EINVAL"  # past source EOF
    assert fs.dedupe(other, bar, 0, 0, 0).bytes_deduped == 0
    fs.check_invariants()


def test_dedupe_eof_block_into_identical_eof():  # generic-136
    fs = FileSystem(256)
    f1 = mkfile(fs, "f1", K64 + 37, 0x61)
    f2 = mkfile(fs, "f2", K64 + 37, 0x61)
    ch = fs.dedupe(f2, f1, K64, K64, 37)
    assert ch.remap_blocks == 1 and ch.blocks_freed == 1
    fs.check_invariants()


# ---------------------------------------------------------------- size changes
def test_truncate_down_cows_shared_eof_block_and_up_zeroes():  # generic-148
    fs = FileSystem(256)
    f1 = fs.create("f1")
    fs.pwrite(f1, 0, K64, 0x61)
    fs.pwrite(f1, K64, 37, 0x62)
    f2, f3 = fs.create("f2"), fs.create("f3")
    fs.clone(f2, f1)
    fs.clone(f3, f1)
    h = fs.md5(f1)
    ch = fs.truncate(f2, K64 + 34)
    assert ch.cow_blocks == 1
    ch = fs.truncate(f3, K64 + 40)
    assert ch.cow_blocks == 0
    assert fs.md5(f1) == h
    assert fs.pread(f2, K64, 100) == b"b" * 34
    assert fs.pread(f3, K64, 100) == b"b" * 37 + bytes(3)
    # growing back f2 exposes zeros, not the old tail
    fs.truncate(f2, K64 + 37)
    assert fs.pread(f2, K64, 100) == b"b" * 34 + bytes(3)
    free0 = fs.free_blocks()
    fs.truncate(f2, 0)
    assert fs.free_blocks() == free0 + 1  # only the private CoW block is freed
    fs.check_invariants()


def test_pwrite_past_eof_zeroes_gap_after_mmap_store_past_eof():
    fs = FileSystem(64)
    a = mkfile(fs, "a", 100, 0x61)
    fs.store(a, 100, 50, 0x77)  # a store past EOF inside the EOF page
    fs.pwrite(a, 3 * BS, 10, 0x62)
    assert fs.pread(a, 0, 200) == b"a" * 100 + bytes(100)
    fs.check_invariants()


def test_punch_and_zero_range():  # generic-146/149/259
    fs = FileSystem(1024)
    a = fs.create("a")
    for i, b in enumerate((0x61, 0x62, 0x63)):
        fs.pwrite(a, i * K64, K64, b)
    b = fs.create("b")
    fs.clone(b, a)
    h = fs.md5(a)
    free0 = fs.free_blocks()
    ch = fs.punch(b, K64, K64)
    assert ch.blocks_freed == 0 and fs.free_blocks() == free0
    assert [e.state for e in fs.bmap(b, 16, 16)] == [HOLE]
    ch = fs.zero_range(b, 0, K64)
    assert ch.blocks_allocated == 16 and [e.state for e in fs.bmap(b, 0, 16)] == [UNWRITTEN]
    assert fs.md5(a) == h
    assert fs.pread(b, 0, 3 * K64) == bytes(2 * K64) + b"c" * K64
    # partial edges: zeroed with CoW on the shared block, whole blocks punched
    ch = fs.punch(b, 2 * K64 + 10, BS + 20)
    assert ch.cow_blocks == 2
    assert fs.pread(b, 2 * K64, 20) == b"c" * 10 + bytes(10)
    assert fs.pread(b, 2 * K64 + BS + 28, 4) == b"\0\0cc"
    assert fs.md5(a) == h
    # zero range past EOF extends unless keep_size
    fs.zero_range(b, 3 * K64, 10, keep_size=True)
    assert fs.size(b) == 3 * K64
    fs.zero_range(b, 3 * K64, 10)
    assert fs.size(b) == 3 * K64 + 10
    assert errno_of(fs.punch, b, 0, 0) == "EINVAL"
    fs.check_invariants()


def test_fallocate_steps_around_shared_blocks():  # generic-144
    fs = FileSystem(1024)
    a = mkfile(fs, "a", 5 * K64 + 37, 0x61)
    b = fs.create("b")
    fs.truncate(b, 5 * K64 + 37)
    fs.clone(b, a, K64, K64, K64)
    h = fs.md5(b)
    ch = fs.fallocate(b, 0, 5 * K64)
    assert ch.blocks_allocated == 64 and ch.remapped == []
    assert fs.md5(b) == h
    st = [(e.state, e.shared) for e in fs.bmap(b, 0, 81)]
    assert (WRITTEN, True) in st and (UNWRITTEN, False) in st
    ch = fs.fallocate(b, 10 * K64, BS, keep_size=True)
    assert fs.size(b) == 5 * K64 + 37 and ch.blocks_allocated == 1
    fs.fallocate(b, 10 * K64, BS)
    assert fs.size(b) == 10 * K64 + BS
    fs.check_invariants()


def test_unshare_copies_shared_blocks_and_allocates_holes():  # generic-264
    fs = FileSystem(1024)
    a = mkfile(fs, "a", 5 * K64, 0x61)
    b = fs.create("b")
    fs.clone(b, a)
    fs.punch(b, 0, BS)
    h = fs.md5(b)
    ch = fs.unshare(b, 0, 2 * K64)
    assert ch.cow_blocks == 31 and ch.blocks_allocated == 32  # + one unwritten in the hole
    assert fs.md5(b) == h and fs.md5(a) == md5(b"a" * 5 * K64)
    assert all(not e.shared for e in fs.bmap(b, 0, 32))
    assert fs.bmap(b, 0)[0].state == UNWRITTEN
    fs.check_invariants()


# ---------------------------------------------------------------- space accounting
def test_free_block_deltas_generic_151_152():
    fs = FileSystem(1 << 20)
    s1 = fs.free_blocks()
    f1 = mkfile(fs, "f1", 8192000, 0x61)
    for i in range(2, 5):
        fs.clone(fs.create(f"f{i}"), f1)
    s2 = fs.free_blocks()
    assert s1 - s2 == 2000
    fs.punch(fs.lookup("f2"), 0, 8192000)
    fs.punch(fs.lookup("f3"), 0, 4096000)
    fs.punch(fs.lookup("f4"), 4096000, 4096000)
    assert fs.free_blocks() == s2
    for i in (2, 3, 4):
        fs.unlink(f"f{i}")
    assert fs.free_blocks() == s2
    fs.unlink("f1")
    assert fs.free_blocks() == s1
    assert fs.blocks_allocated == fs.blocks_freed == 2000


def test_freed_block_keeps_stale_content():
    """A freed block keeps its content (nothing clears it: XFS neither); an unwritten
    extent over it reads zeros; a block never written holds the device's fill byte."""
    fs = FileSystem(8, fill_byte=0x77)
    a, b = fs.create("f0"), fs.create("f1")
    fs.pwrite(a, 0, 2 * BS, 0x61)
    p0 = fs.bmap(a, 0, 1)[0].pblock
    fs.unlink("f0")
    assert fs.refcount(p0) == 0
    assert fs.block_content(p0) == ((0, BS, 0x61),)
    fs.fallocate(b, 0, BS)
    q = fs.bmap(b, 0, 1)[0]
    assert q.state == UNWRITTEN and q.pblock == p0  # the first free block again
    assert fs.block_content(p0) == ((0, BS, 0x61),)
    assert fs.pread(b, 0, BS) == bytes(BS)
    assert fs.block_content(fs.nblocks - 1) == ((0, BS, 0x77),)


def test_enospc():
    fs = FileSystem(8)
    a = fs.create("a")
    assert errno_of(fs.pwrite, a, 0, 9 * BS, 1) == "ENOSPC"
    fs.pwrite(a, 0, 8 * BS, 1)
    b = fs.create("b")
    fs.clone(b, a)
    assert errno_of(fs.pwrite, b, 0, 1, 2) == "ENOSPC"
    assert fs.md5(b) == fs.md5(a)
    fs.check_invariants()


def test_namespace_errors():
    fs = FileSystem(8)
    assert errno_of(fs.open, "x") == "ENOENT"
    assert errno_of(fs.unlink, "x") == "ENOENT"
    assert errno_of(fs.lookup, "x") == "ENOENT"
    assert errno_of(fs.create, "dir/") == "EISDIR"
    a = fs.create("a")
    assert fs.create("a") == a and fs.paths() == ["a"] and fs.exists("a")
    fs.pwrite(a, 0, 10, 1)
    assert fs.open("a", trunc=True) == a and fs.size(a) == 0
    assert errno_of(fs.truncate, a, -1) == "EINVAL"
    assert errno_of(fs.pwrite, a, 1 << 63, 1, 1) == "EFBIG"


def test_terabyte_device_costs_nothing_until_used():
    tracemalloc.start()
    fs = FileSystem(1 << 28)
    a = fs.create("a")
    fs.pwrite(a, 1 << 39, 1 << 20, 0x61)  # 1 MiB at 512 GiB
    cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2 << 20
    assert fs.free_blocks() == (1 << 28) - 256
    assert len(fs.free) <= 2 and len(fs.content) == 1


# ---------------------------------------------------------------- rmap / bmap
def test_rmap_and_bmap_split_by_sharing():
    fs = FileSystem(256)
    a = mkfile(fs, "a", 8 * BS, 0x61)
    b = fs.create("b")
    fs.clone(b, a, 2 * BS, 0, 4 * BS)
    ext = fs.bmap(a, 0, 8)
    assert [(e.fblock, e.nblocks, e.shared) for e in ext] == [
        (0, 2, False),
        (2, 4, True),
        (6, 2, False),
    ]
    p = fs.bmap(a, 3)[0].pblock
    assert fs.rmap(p) == sorted([(a, 3), (b, 1)])
    assert fs.refcount(p) == 2 and fs.refcount(200) == 0
    assert fs.bmap(b, 4, 2) == [fs.bmap(b, 4, 2)[0]] and fs.bmap(b, 4, 2)[0].state == HOLE
    assert fs.shared_blocks(b) == (4, 4)
    fs.unlink("a")
    assert fs.rmap(p) == [(b, 1)] and fs.refcount(p) == 1


# ---------------------------------------------------------------- property test
class Ref:
    """Byte-array reference of file contents."""

    def __init__(self):
        self.data: dict[str, bytearray] = {}

    def grow(self, name, n):
        d = self.data[name]
        if n > len(d):
            d.extend(bytes(n - len(d)))


_names = st.sampled_from(["a", "b", "c"])
_off = st.one_of(
    st.integers(0, 12).map(lambda b: b * BS),
    st.integers(0, 12).map(lambda b: b * BS),
    st.integers(0, 14 * BS),
)
_len = st.one_of(
    st.integers(0, 6).map(lambda b: b * BS),
    st.integers(0, 6).map(lambda b: b * BS),
    st.integers(0, 6 * BS),
)
_byte = st.sampled_from([0x00, 0x61, 0x62, 0x63])
_op = st.one_of(
    st.tuples(st.just("pwrite"), _names, _off, _len.filter(lambda x: x > 0), _byte),
    st.tuples(st.just("clone"), _names, _names, _off, _off, _len),
    st.tuples(st.just("ficlone"), _names, _names),
    st.tuples(st.just("ficlone"), _names, _names),
    st.tuples(st.just("pwrite"), _names, _off, _len.filter(lambda x: x > 0), _byte),
    st.tuples(st.just("dedupe"), _names, _names, _off, _off, _len),
    st.builds(lambda n, m, o, ln: ("dedupe", n, m, o, o, ln), _names, _names, _off, _len),
    st.tuples(st.just("truncate"), _names, _off),
    st.tuples(st.just("punch"), _names, _off, _len.filter(lambda x: x > 0)),
    st.tuples(st.just("zero"), _names, _off, _len.filter(lambda x: x > 0), st.booleans()),
    st.tuples(st.just("unshare"), _names, _off, _len.filter(lambda x: x > 0)),
    st.tuples(st.just("falloc"), _names, _off, _len.filter(lambda x: x > 0), st.booleans()),
    st.tuples(st.just("mwrite"), _names, _off, _len.filter(lambda x: x > 0), _byte),
    st.tuples(st.just("unlink"), _names),
)


class RecFS(FileSystem):
    """Records every FsChange the public mutators return."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.log = []

    def _rec(name):  # noqa: N805
        def f(self, *a, **k):
            ch = getattr(FileSystem, name)(self, *a, **k)
            self.log.append(ch)
            return ch

        return f

    for _n in (
        "pwrite",
        "clone",
        "dedupe",
        "truncate",
        "punch",
        "zero_range",
        "unshare",
        "fallocate",
        "cow_blocks",
        "alloc_blocks",
        "unlink",
    ):
        locals()[_n] = _rec(_n)
    del _n


def _block_maps(fs):
    out = {}
    for ino in fs.inodes:
        out[ino] = {
            fb: (e.pblock + fb - e.fblock if e.pblock >= 0 else -1, e.state)
            for e in fs.bmap(ino, 0, 40)
            for fb in range(e.fblock, e.fblock + e.nblocks)
        }
    return out


def _check_change_records(fs, before):
    """Every block whose physical block changed or went away is in ``remapped``; every hole or
    unwritten block that became written is in ``remapped`` or ``newly_mapped``."""
    rem, new = set(), set()
    for ch in fs.log:
        for ino, f0, n in ch.remapped:
            rem.update((ino, f) for f in range(f0, f0 + n))
        for ino, f0, n in ch.newly_mapped:
            new.update((ino, f) for f in range(f0, f0 + n))
    after = _block_maps(fs)
    for ino, old in before.items():
        cur = after.get(ino, {})
        for fb, (p, state) in old.items():
            p2, st2 = cur.get(fb, (-1, HOLE))
            if p >= 0 and p2 != p:
                assert (ino, fb) in rem, (ino, fb, p, p2)
            if state != WRITTEN and st2 == WRITTEN:
                assert (ino, fb) in rem | new, (ino, fb)


@settings(max_examples=200, deadline=None)
@given(st.lists(_op, min_size=4, max_size=30))
def test_random_ops_match_byte_reference(ops):
    fs = RecFS(400, fill_byte=0x58)
    ref = Ref()
    for name, size, byte in (("a", 8 * BS, 0x61), ("b", 8 * BS, 0x61), ("c", 5 * BS + 100, 0x62)):
        fs.pwrite(fs.create(name), 0, size, byte)
        ref.data[name] = bytearray([byte]) * size
    for op in ops:
        kind, name = op[0], op[1]
        if not fs.exists(name):
            fs.create(name)
            ref.data[name] = bytearray()
        ino = fs.lookup(name)
        d = ref.data[name]
        before = _block_maps(fs)
        fs.log.clear()
        try:
            if kind == "pwrite":
                _, _, off, ln, b = op
                fs.pwrite(ino, off, ln, b)
                ref.grow(name, off + ln)
                d[off : off + ln] = bytes([b]) * ln
            elif kind in ("clone", "ficlone"):
                src = op[2]
                if not fs.exists(src):
                    continue
                s = ref.data[src]
                if kind == "ficlone":
                    soff = doff = 0
                    ln = 0
                    fs.clone(ino, fs.lookup(src))
                else:
                    _, _, _, soff, doff, ln = op
                    fs.clone(ino, fs.lookup(src), soff, doff, ln)
                n = ln if ln else max(len(s) - soff, 0)
                chunk = bytes(s[soff : soff + n])
                if chunk:
                    ref.grow(name, doff + n)
                    d[doff : doff + n] = chunk
            elif kind == "dedupe":
                src = op[2]
                if not fs.exists(src):
                    continue
                _, _, _, soff, doff, ln = op
                fs.dedupe(ino, fs.lookup(src), soff, doff, ln)
            elif kind == "truncate":
                fs.truncate(ino, op[2])
                del d[op[2] :]
                ref.grow(name, op[2])
            elif kind == "punch":
                _, _, off, ln = op
                fs.punch(ino, off, ln)
                e = min(off + ln, len(d))
                if e > off:
                    d[off:e] = bytes(e - off)
            elif kind in ("zero", "falloc", "unshare"):
                off, ln = op[2], op[3]
                keep = op[4] if len(op) > 4 else False
                if kind == "zero":
                    fs.zero_range(ino, off, ln, keep_size=keep)
                    e = min(off + ln, len(d))
                    if e > off:
                        d[off:e] = bytes(e - off)
                elif kind == "falloc":
                    fs.fallocate(ino, off, ln, keep_size=keep)
                else:
                    fs.unshare(ino, off, ln)
                if not keep:
                    ref.grow(name, off + ln)
            elif kind == "mwrite":
                _, _, off, ln, b = op
                size = len(d)
                if off >= size:
                    continue
                ln = min(ln, size - off)
                b0, b1 = off // BS, -(-(off + ln) // BS)
                fs.cow_blocks(ino, b0, b1 - b0)
                fs.alloc_blocks(ino, b0, b1 - b0)
                fs.store(ino, off, ln, b)
                d[off : off + ln] = bytes([b]) * ln
            elif kind == "unlink":
                fs.unlink(name)
                del ref.data[name]
        except FsError as e:
            assert e.errno in ("EINVAL", "EBADE", "ENOSPC"), e
            if e.errno == "ENOSPC":
                return  # partial effects on ENOSPC are not modelled by the reference
        fs.check_invariants()
        _check_change_records(fs, before)
        for n2, data in ref.data.items():
            i2 = fs.lookup(n2)
            assert fs.size(i2) == len(data)
            got = fs.pread(i2, 0, len(data))
            assert got == bytes(data), (op, n2)
            assert 0x58 not in got
            assert fs.md5(i2) == md5(bytes(data))
    # refcounts equal references, vectorised (check_invariants) and by brute force
    refs: dict[int, int] = {}
    for ip in fs.inodes.values():
        for p, n in zip(ip.ext.cols[0].tolist(), ip.ext.length.tolist(), strict=False):
            for q in range(p, p + n):
                refs[q] = refs.get(q, 0) + 1
    for q in range(fs.nblocks):
        assert fs.refcount(q) == refs.get(q, 0)


def test_range_md5_and_compare():
    fs = FileSystem(64)
    a = mkfile(fs, "a", 3 * BS + 5, 0x61)
    assert fs.md5(a, BS - 2, 4) == md5(b"aaaa")
    assert fs.md5(a, 3 * BS, BS) == md5(b"a" * 5 + bytes(BS - 5))  # zeros past EOF
    b = mkfile(fs, "b", 2 * BS, 0x61)
    assert fs.compare(a, 0, b, 0, 2 * BS)
    assert not fs.compare(a, 0, b, 0, 3 * BS)  # b is shorter
    fs.pwrite(b, 100, 1, 0x62)
    assert not fs.compare(a, 0, b, 0, 2 * BS)
    assert fs.compare(a, 101, b, 101, 10)
    assert fs.block_content(fs.bmap(b, 0)[0].pblock) == (
        (0, 100, 0x61),
        (100, 1, 0x62),
        (101, BS - 101, 0x61),
    )
    assert fs.block_content_md5(fs.bmap(a, 0)[0].pblock) == md5(b"a" * BS)


def test_sweep_and_segments_kernels():
    from sim.fs.runs import segments, sweep_deltas

    s, ln, d = sweep_deltas(
        np.array([5, 5, 7] + [5] * 100),
        np.array([1, 1, 3] + [1] * 100),
        np.array([1, 1, -1] + [1] * 100),
    )
    assert s.tolist() == [5, 7] and ln.tolist() == [1, 3] and d.tolist() == [102, -1]
    qi, ss, sl, rr = segments(
        np.array([10, 20]), np.array([5, 5]), np.array([0, 12]), np.array([30, 2])
    )
    assert list(zip(qi.tolist(), ss.tolist(), sl.tolist(), rr.tolist(), strict=False)) == [
        (0, 0, 10, -1),
        (0, 10, 5, 0),
        (0, 15, 5, -1),
        (0, 20, 5, 1),
        (0, 25, 5, -1),
        (1, 12, 2, 0),
    ]


def test_fschange_tells_the_dax_layer_what_moved():
    fs = FileSystem(256)
    a = mkfile(fs, "a", 4 * BS, 0x61)
    pa = fs.bmap(a, 0)[0].pblock
    b = fs.create("b")
    fs.truncate(b, 8 * BS)
    ch = fs.pwrite(b, 6 * BS, 10, 1)  # hole filled
    assert ch.newly_mapped == [(b, 6, 1)] and ch.remapped == []
    p6 = fs.bmap(b, 6)[0].pblock
    assert ch.pmem_write == [(p6 * BS, BS), (p6 * BS, 10)] and ch.blocks_zeroed == 1
    ch = fs.clone(b, a, 0, 0, 4 * BS)
    assert ch.remapped == [] and ch.refcount_increments == 4 and ch.remap_blocks == 4
    ch = fs.clone(b, a, 0, 4 * BS, 4 * BS)  # replaces b's block 6
    assert ch.remapped == [(b, 6, 1)] and ch.blocks_freed == 1
    ch = fs.cow_blocks(b, 1, 2)
    assert ch.remapped == [(b, 1, 2)] and ch.pmem_read == [((pa + 1) * BS, 2 * BS)]
    assert ch.refcount_decrements == 2 and ch.refcount_changes == 2
    ch = fs.punch(b, 0, 2 * BS)
    assert ch.remapped == [(b, 0, 1), (b, 1, 1)] or ch.remapped == [(b, 0, 2)]
    _, ch = fs.open_ex("b", trunc=True)
    assert sum(r[2] for r in ch.remapped) == 6 and ch.size_after == 0
    ch = fs.unlink("a")
    assert sum(r[2] for r in ch.remapped) == 4 and ch.blocks_freed == 4
    fs.check_invariants()
