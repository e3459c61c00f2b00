"""BlockFileSystem against FileSystem: the same calls give the same everything.

A differential test drives both filesystems with the same random call sequences (every
mutating method, aligned and byte-granular ranges, errors included) and compares return
values, errnos, the FsChange records and the full observable state after every call; a
second one drives two DaxFS (one per filesystem class) with the hunt's own op generator and
compares memmap words, warnings, DAX entries and file contents after every op.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.fs import BLOCK_SIZE, FileSystem, FsChange, FsError
from sim.fs.blockfs import BlockFileSystem

BS = BLOCK_SIZE
PATHS = ("f0", "f1", "f2")
#: Files' block maps are compared over this many blocks (past any offset the tests use
#: except the huge ones, which bmap's hole rows cover too).
SPAN = 1 << 40


# ---------------------------------------------------------------------- the harness
def _ino(fs, path):
    return fs.names.get(path, 99999)


def call(fs, op):
    """Run ``op`` (a tuple) on ``fs``; return ``("ok", value)`` or ``("err", errno)``."""
    name, args = op[0], op[1:]
    try:
        if name == "open":
            path, create, trunc = args
            v = fs.open_ex(path, create=create, trunc=trunc)
        elif name == "unlink":
            v = fs.unlink(args[0])
        elif name in ("pwrite", "store"):
            path, off, ln, b = args
            v = getattr(fs, name)(_ino(fs, path), off, ln, b)
        elif name in ("cow_blocks", "alloc_blocks", "punch", "fsync_range"):
            path, a, b = args
            v = getattr(fs, name)(_ino(fs, path), a, b)
        elif name == "truncate":
            v = fs.truncate(_ino(fs, args[0]), args[1])
        elif name in ("fallocate", "zero_range", "unshare"):
            path, off, ln, keep = args
            v = getattr(fs, name)(_ino(fs, path), off, ln, keep_size=keep)
        elif name == "clone":
            dst, src, soff, doff, ln = args
            if ln == -1:
                v = fs.clone(_ino(fs, dst), _ino(fs, src))
            else:
                v = fs.clone(_ino(fs, dst), _ino(fs, src), soff, doff, ln)
        elif name == "dedupe":
            dst, src, soff, doff, ln = args
            v = fs.dedupe(_ino(fs, dst), _ino(fs, src), soff, doff, ln)
        elif name == "fsync":
            v = fs.fsync(_ino(fs, args[0]))
        elif name == "iomap":
            path, fb, n = args
            v = fs.iomap(_ino(fs, path), fb, n)
        elif name == "compare":
            a, oa, b, ob, ln = args
            v = fs.compare(_ino(fs, a), oa, _ino(fs, b), ob, ln)
        elif name == "pread":
            path, off, ln = args
            v = fs.pread(_ino(fs, path), off, ln)
        elif name == "byte_runs_list":
            path, off, ln = args
            v = fs.byte_runs_list(_ino(fs, path), off, ln)
        elif name == "md5":
            path, off, ln = args
            ino = _ino(fs, path)
            if ln is None and fs.size(ino) - off > 1 << 22:
                # to EOF of a huge sparse file: md5 reads every byte (hours for the 2**63-2
                # byte files truncate makes here), in either class; hash a bounded range
                ln = 9 * BS
            v = fs.md5(ino, off, ln)
        else:
            raise AssertionError(name)
    except FsError as e:
        return ("err", e.errno)
    return ("ok", v)


def norm(res):
    """A comparable form of a call's result (FsChange as a dict of all its fields)."""
    kind, v = res
    if isinstance(v, FsChange):
        return kind, dataclasses.asdict(v)
    if isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], FsChange):
        return kind, (v[0], dataclasses.asdict(v[1]))
    return kind, v


def state(fs):
    """Everything observable of a filesystem."""
    out = {
        "names": dict(fs.names),
        "free": fs.free_blocks(),
        "counters": fs.counters(),
        "inodes": sorted(fs.inodes),
        "paths": fs.paths(),
    }
    pblocks = set()
    files = {}
    for path, ino in sorted(fs.names.items()):
        size = fs.size(ino)
        bm = fs.bmap(ino, 0, SPAN)
        arr = [a.tolist() for a in fs.bmap_arrays(ino, 0, -(-size // BS) + 3)]
        for e in bm:
            if e.pblock >= 0:
                pblocks.update(range(e.pblock, e.pblock + e.nblocks))
        lens, vals = fs.byte_runs(ino, 0, size + 10)
        files[path] = {
            "size": size,
            "reflink": fs.is_reflink(ino),
            "bmap": bm,
            "arrays": arr,
            "runs": (lens.tolist(), vals.tolist()),
            "shared": fs.shared_blocks(ino),
            "extents": fs.extent_count(ino),
            "path_of": fs.path_of(ino),
            "md5": fs.md5(ino) if size <= 1 << 22 else None,
            "pread": fs.pread(ino, 1000, 9000),
            "runs_mid": [a.tolist() for a in fs.byte_runs(ino, 5000, 7000)],
            "iomap": [fs.iomap(ino, fb, n) for fb in range(0, 12, 3) for n in (1, 4, 600)],
        }
    out["files"] = files
    nb = fs.nblocks
    probe = set(range(nb)) if nb <= 128 else pblocks | {0, 1, nb - 1, nb, -1}
    out["refcount"] = {p: fs.refcount(p) for p in sorted(probe) if 0 <= p < nb}
    for p in (-1, nb):
        with pytest.raises(FsError) as ei:
            fs.refcount(p)
        assert ei.value.errno == "EINVAL"
    out["rmap"] = {p: fs.rmap(p) for p in sorted(pblocks)}
    out["content"] = {p: fs.block_content(p) for p in sorted(probe) if 0 <= p < nb}
    return out


def run_both(nblocks, fill, ops, *, check_state=True):
    a = FileSystem(nblocks, fill_byte=fill)
    b = BlockFileSystem(nblocks, fill_byte=fill)
    a.max_extents = 0
    for i, op in enumerate(ops):
        ra, rb = norm(call(a, op)), norm(call(b, op))
        assert ra == rb, f"op {i} {op}: FileSystem {ra} != BlockFileSystem {rb}"
        a.check_invariants()
        b.check_invariants()
        assert b._invariants_hold_small()
        a.max_extents = max([a.max_extents] + [len(ip.ext) for ip in a.inodes.values()])
        if check_state:
            sa, sb = state(a), state(b)
            for k in sa:
                assert sa[k] == sb[k], f"after op {i} {op}: {k} differs"
    return a, b


# ---------------------------------------------------------------------- strategies
blk = st.integers(0, 24)
_aoff = blk.map(lambda b: b * BS)
_alen = st.integers(0, 10).map(lambda b: b * BS)
_near = st.integers(0, 5).map(lambda b: b * BS)  # inside the files _setup writes
_off = st.one_of(
    _aoff,
    _aoff,
    _aoff,
    st.integers(0, 24 * BS),
    st.sampled_from([-1, 1 << 40, (1 << 63) - 2]),
)
_len = st.one_of(
    _alen,
    _alen,
    _alen,
    st.integers(0, 12 * BS),
    st.just(512 * BS),
    st.sampled_from([-5, 1 << 62]),
)
path = st.sampled_from(PATHS)
byte = st.sampled_from([0, 0x61, 0x62, 0xFF, 0x1AB])
nblk = st.integers(0, 20)

op_st = st.one_of(
    st.tuples(st.just("open"), path, st.booleans(), st.booleans()),
    st.tuples(
        st.just("open"), st.sampled_from(["", "d/", "f0", "f1"]), st.just(True), st.just(False)
    ),
    st.tuples(st.just("pwrite"), path, _off, _len, byte),
    st.tuples(st.just("pwrite"), path, _off, _len, byte),
    st.tuples(st.just("store"), path, _off, _len, byte),
    st.tuples(st.just("cow_blocks"), path, blk, nblk),
    st.tuples(st.just("alloc_blocks"), path, blk, nblk),
    st.tuples(st.just("truncate"), path, st.one_of(_off, st.just(-3))),
    st.tuples(st.just("fallocate"), path, _off, _len, st.booleans()),
    st.tuples(st.just("punch"), path, _off, _len),
    st.tuples(st.just("zero_range"), path, _off, _len, st.booleans()),
    st.tuples(st.just("unshare"), path, _off, _len, st.booleans()),
    st.tuples(st.just("clone"), path, path, _off, _off, st.one_of(_len, st.just(-1))),
    st.tuples(st.just("clone"), path, path, _off, _off, st.one_of(_len, st.just(-1))),
    st.tuples(st.just("dedupe"), path, path, _off, _off, _len),
    st.tuples(st.just("dedupe"), path, path, _near, _near, _alen),
    st.tuples(st.just("dedupe"), path, path, _near, _near, st.integers(1, 9 * BS)),
    st.tuples(st.just("clone"), path, path, _near, _aoff, st.integers(0, 4).map(lambda b: b * BS)),
    st.tuples(st.just("clone"), path, path, _near, _aoff, st.just(0)),
    st.tuples(st.just("unlink"), path),
    st.tuples(st.just("fsync"), path),
    st.tuples(st.just("iomap"), path, blk, st.sampled_from([1, 2, 9, 512])),
    st.tuples(st.just("compare"), path, _off, path, _off, _len),
    st.tuples(st.just("pread"), path, _off, st.integers(0, 3 * BS)),
    st.tuples(st.just("byte_runs_list"), path, _off, st.one_of(_len, st.just(200 * BS))),
    st.tuples(
        st.just("md5"), path, st.integers(0, 9 * BS), st.one_of(st.none(), st.integers(0, 9 * BS))
    ),
)


def _setup(paths=PATHS):
    """Create the files; f0 and f1 hold equal bytes (dedupe can succeed), f2 other bytes
    and a partial block."""
    ops = [("open", p, True, False) for p in paths]
    return ops + [
        ("pwrite", "f0", 0, 6 * BS, 0x61),
        ("pwrite", "f1", 0, 6 * BS, 0x61),
        ("pwrite", "f2", 0, 2 * BS + 100, 0x62),
    ]


# ---------------------------------------------------------------------- differential tests
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    nblocks=st.sampled_from([20, 40, 100, 700]),
    fill=st.sampled_from([None, 0, 0xAB]),
    ops=st.lists(op_st, min_size=1, max_size=30),
)
def test_differential_random_calls(nblocks, fill, ops):
    run_both(nblocks, fill, _setup() + ops)


# a workload that builds fragmented files (many extents, refcount records and free runs)
def _fragmenting_ops(rng: random.Random, n: int):
    ops = _setup()
    for b in range(48):  # interleaved allocations: one extent per block
        for p in PATHS[:2]:
            ops.append(("pwrite", p, (b * 2 + (p == "f1")) * BS, BS, 0x41 + b % 3))
    for _ in range(n):
        k = rng.random()
        p, q = rng.choice(PATHS), rng.choice(PATHS)
        if k < 0.35:
            ops.append(
                (
                    "pwrite",
                    p,
                    rng.randrange(128) * BS + rng.choice([0, 0, 100]),
                    rng.randrange(1, 4) * BS - rng.choice([0, 0, 7]),
                    rng.randrange(256),
                )
            )
        elif k < 0.5:
            ops.append(
                (
                    "clone",
                    p,
                    q,
                    rng.randrange(40) * BS,
                    rng.randrange(64) * BS,
                    rng.randrange(0, 9) * BS,
                )
            )
        elif k < 0.6:
            ops.append(("punch", p, rng.randrange(64) * BS, rng.randrange(1, 5) * BS))
        elif k < 0.7:
            ops.append(("cow_blocks", p, rng.randrange(64), rng.randrange(1, 9)))
        elif k < 0.75:
            ops.append(
                (
                    "fallocate",
                    p,
                    rng.randrange(80) * BS,
                    rng.randrange(1, 5) * BS,
                    rng.random() < 0.5,
                )
            )
        elif k < 0.8:
            ops.append(("alloc_blocks", p, rng.randrange(64), rng.randrange(1, 9)))
        elif k < 0.85:
            ops.append(
                (
                    "zero_range",
                    p,
                    rng.randrange(64 * BS),
                    rng.randrange(1, 6 * BS),
                    rng.random() < 0.5,
                )
            )
        elif k < 0.9:
            ops.append(
                (
                    "dedupe",
                    p,
                    q,
                    rng.randrange(16) * BS,
                    rng.randrange(16) * BS,
                    rng.randrange(1, 5) * BS,
                )
            )
        elif k < 0.95:
            ops.append(("unshare", p, rng.randrange(64 * BS), rng.randrange(1, 9 * BS), False))
        elif k < 0.98:
            ops.append(("truncate", p, rng.randrange(70 * BS)))
        else:
            ops.append(("unlink", p))
            ops.append(("open", p, True, False))
    return ops


@pytest.mark.parametrize("seed", range(6))
def test_differential_fragmented(seed):
    """Long sequences: files of more than 32 extents take FileSystem's numpy paths."""
    rng = random.Random(seed)
    ops = _fragmenting_ops(rng, 400)
    a, b = run_both(400 if seed % 2 else 8192, None if seed % 3 else 0x5A, ops, check_state=False)
    assert state(a) == state(b)
    assert a.max_extents > 32


# ---------------------------------------------------------------------- regressions
def _open3():
    return [("open", p, True, False) for p in PATHS]


def test_rows_cut_where_refcount_changes():
    """One extent whose blocks have refcounts 3, 2, 3: the write-fault CoW works on the
    rows cut at each change (records counted per piece)."""
    ops = _open3() + [
        ("pwrite", "f0", 0, 6 * BS, 0x61),
        ("clone", "f1", "f0", 0, 0, 6 * BS),
        ("clone", "f2", "f0", 0, 0, 2 * BS),
        ("clone", "f2", "f0", 4 * BS, 4 * BS, 2 * BS),
    ]
    a, b = run_both(64, None, ops)
    f, n, p, _st, c = b.bmap_arrays(b.names["f0"], 0, 6)
    assert (n.tolist(), c.tolist()) == ([2, 2, 2], [3, 2, 3])
    assert b.extent_count(b.names["f0"]) == 1
    run_both(64, None, ops + [("cow_blocks", "f0", 1, 4), ("unshare", "f1", 100, 5 * BS, False)])


def test_allocation_goal_after_neighbour_taken():
    """Interleaved allocations: the goal (block after the previous file block) is taken,
    so the first free run at/after it is used, then the largest run when none fits."""
    ops = _open3()
    for k in range(6):
        ops += [("pwrite", "f0", 2 * k * BS, BS, 1), ("pwrite", "f1", (2 * k + 1) * BS, BS, 2)]
    ops += [
        ("punch", "f0", 2 * BS, 2 * BS),
        ("pwrite", "f2", 0, 3 * BS, 3),
        ("pwrite", "f0", 11 * BS, 5 * BS, 4),
        ("pwrite", "f1", 40 * BS, 30 * BS, 5),
    ]
    a, b = run_both(40, None, ops)
    assert b.bmap(b.names["f0"], 0, 12)[0].pblock == 0


def test_sparse_huge_offsets():
    """Blocks at 1 TiB and near the maximum file size: rows come from the extents, never
    from a walk over the range."""
    ops = _open3() + [
        ("pwrite", "f0", 1 << 40, 3 * BS + 5, 0x61),
        ("pwrite", "f0", 0, 100, 0x62),
        ("clone", "f1", "f0", 0, 0, -1),
        ("punch", "f1", (1 << 40) + BS, 1 << 30),
        ("fallocate", "f2", (1 << 62) - BS, 2 * BS, True),
        ("truncate", "f0", 5),
        ("truncate", "f2", 0),
    ]
    run_both(32, None, ops)


def test_unwritten_remap_rules():
    """Unwritten source over unwritten dest stays; over written dest punches it; a hole
    source punches dest."""
    ops = _open3() + [
        ("fallocate", "f0", 0, 4 * BS, False),
        ("pwrite", "f0", 3 * BS, BS, 0x61),
        ("fallocate", "f1", 0, 2 * BS, False),
        ("pwrite", "f1", 2 * BS, 4 * BS, 0x62),
        ("clone", "f1", "f0", 0, 0, 4 * BS),
        ("punch", "f0", 0, BS),
        ("clone", "f1", "f0", 0, 0, 0),
    ]
    a, b = run_both(32, 0xEE, ops)
    assert b.bmap(b.names["f1"], 0, 1)[0].pblock == -1


def test_freed_block_keeps_stale_content():
    """A freed block keeps its content (FileSystem never clears it); unwritten blocks read
    zeros; never-written blocks hold the device fill."""
    ops = _open3() + [
        ("pwrite", "f0", 0, 2 * BS, 0x61),
        ("unlink", "f0"),
        ("fallocate", "f1", 0, BS, False),
        ("alloc_blocks", "f2", 0, 1),
    ]
    a, b = run_both(8, 0x77, ops)
    assert b.block_content(0) == ((0, BS, 0x61),)
    assert b.block_content(5) == ((0, BS, 0x77),)
    assert b.pread(b.names["f1"], 0, 10) == bytes(10)


def test_record_accounting_clone_into_fragmented_destination():
    """extent_records_touched / refcount_records_touched of a clone over a destination of
    many extents and refcount records (the FsChange is compared whole)."""
    ops = _open3()
    for k in range(8):
        ops += [("pwrite", "f0", 2 * k * BS, BS, k), ("pwrite", "f2", 2 * k * BS, BS, k)]
    ops += [
        ("clone", "f1", "f2", 0, 0, 16 * BS),
        ("clone", "f0", "f1", 0, 0, 16 * BS),
        ("clone", "f0", "f2", 2 * BS, 4 * BS, 6 * BS),
    ]
    a, b = run_both(64, None, ops)
    ch = b.clone(b.names["f2"], b.names["f0"], 0, 0, 0)
    want = a.clone(a.names["f2"], a.names["f0"], 0, 0, 0)
    assert dataclasses.asdict(ch) == dataclasses.asdict(want)
    assert ch.extent_records_touched > 0


def test_invariant_check_detects_damage():
    fs = BlockFileSystem(32)
    ino = fs.create("f")
    fs.pwrite(ino, 0, 3 * BS, 1)
    fs.check_invariants()
    assert fs._invariants_hold_small()
    fs.rc[1] += 1
    assert not fs._invariants_hold_small()
    with pytest.raises(AssertionError):
        fs.check_invariants()
    fs.rc[1] -= 1
    fs._fl[0] -= 1
    with pytest.raises(AssertionError, match="free"):
        fs.check_invariants()


# ---------------------------------------------------------------------- through DaxFS
def _dax_view(sess):
    d = sess.dax
    fs = d.fs
    pfn, mapping, index = d.mm.state()
    files = {}
    for path, ino in sorted(fs.names.items()):
        size = fs.size(ino)
        lens, vals = fs.byte_runs(ino, 0, size)
        files[path] = (
            size,
            lens.tolist(),
            vals.tolist(),
            [a.tolist() for a in fs.bmap_arrays(ino, 0, -(-size // BS) + 1)],
        )
    return {
        "words": (pfn.tolist(), mapping.tolist(), index.tolist()),
        "warnings": dict(d.mm.warnings),
        "entries": {k: v.tolist() for k, v in d.entries().items()},
        "files": files,
        "free": fs.free_blocks(),
        "errno": sess.last_errno,
        "stats": dict(d.stats),
    }


@pytest.mark.parametrize(
    "variant", sorted(__import__("sim.memmap.variants", fromlist=["VARIANTS"]).VARIANTS)
)
def test_daxfs_hunt_ops_same(variant):
    """The hunt's op generator on two sessions, FileSystem vs BlockFileSystem: the same
    memmap words, warnings, DAX entries, file contents, errnos, DaxFS stats and invariant
    findings after every op."""
    from sim.hunt.search import Draws, generate_op
    from sim.hunt.session import OP_KINDS, Session

    # (seed, device blocks, the search's direct command path); 300 blocks: ENOSPC happens
    for seed, nblocks, direct in ((1, 2048, False), (2, 300, True)):
        a = Session(variant, nblocks=nblocks, direct=direct)
        b = Session(variant, nblocks=nblocks, direct=direct, fs_class=BlockFileSystem)
        assert isinstance(b.dax.fs, BlockFileSystem)
        rng = Draws(np.random.default_rng(seed))
        nops = 0
        for _ in range(400):
            op = generate_op(rng, a, OP_KINDS, 3)
            if op is None:
                continue
            ra, rb = a.apply(op), b.apply(op)
            assert ra == rb, op
            # the hunt's invariant checks (they read byte_runs_list, bmap_arrays, iomap,
            # rmap, check_invariants ...): the same findings, every 4th op in full
            full = nops % 4 == 0
            assert str(a.check(full=full)) == str(b.check(full=full)), op
            va, vb = _dax_view(a), _dax_view(b)
            for k in va:
                assert va[k] == vb[k], f"{variant} seed {seed} op {nops} {op}: {k} differs"
            nops += 1
        assert b.lines == a.lines
        b.dax.fs.check_invariants()
        a.close()
        b.close()
