"""The list fast paths of sim.fs (and the run maps' list form) compute exactly what the numpy
paths compute: random operation sequences run twice, once with the fast paths on (at the
default thresholds and at tiny thresholds, which makes the maps switch form often) and once
with them off, must give the same FsChange records, errors, counters, run maps and reverse
maps; the list merges and splices equal the numpy ones per column layout; DaxFS's
iomap must equal the walk of bmap over the 512-block window it replaced."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim.fs.filesystem as fsmod
import sim.fs.runs as runsmod
from sim.fs import HOLE, WRITTEN, FileSystem, FsError
from sim.fs.runs import RunMap, merge_list_runs, merge_runs

BS = 4096
NFILES = 3

op = st.one_of(
    st.tuples(
        st.just("pwrite"),
        st.integers(0, NFILES - 1),
        st.integers(0, 60 * BS),
        st.integers(1, 9 * BS),
        st.integers(1, 255),
    ),
    st.tuples(
        st.just("store"),
        st.integers(0, NFILES - 1),
        st.integers(0, 60 * BS),
        st.integers(1, 3 * BS),
        st.integers(1, 255),
    ),
    st.tuples(st.just("cow"), st.integers(0, NFILES - 1), st.integers(0, 60), st.integers(1, 12)),
    st.tuples(st.just("alloc"), st.integers(0, NFILES - 1), st.integers(0, 60), st.integers(1, 12)),
    st.tuples(st.just("truncate"), st.integers(0, NFILES - 1), st.integers(0, 64 * BS)),
    st.tuples(
        st.just("punch"),
        st.integers(0, NFILES - 1),
        st.integers(0, 60 * BS),
        st.integers(1, 12 * BS),
    ),
    st.tuples(
        st.just("zero"),
        st.integers(0, NFILES - 1),
        st.integers(0, 60 * BS),
        st.integers(1, 12 * BS),
    ),
    st.tuples(
        st.just("unshare"),
        st.integers(0, NFILES - 1),
        st.integers(0, 60 * BS),
        st.integers(1, 12 * BS),
    ),
    st.tuples(
        st.just("falloc"),
        st.integers(0, NFILES - 1),
        st.integers(0, 60 * BS),
        st.integers(1, 12 * BS),
    ),
    st.tuples(
        st.just("clone"),
        st.integers(0, NFILES - 1),
        st.integers(0, NFILES - 1),
        st.integers(0, 40),
        st.integers(0, 40),
        st.integers(0, 24),
    ),
    st.tuples(st.just("clonefile"), st.integers(0, NFILES - 1), st.integers(0, NFILES - 1)),
    st.tuples(
        st.just("dedupe"),
        st.integers(0, NFILES - 1),
        st.integers(0, NFILES - 1),
        st.integers(0, 40),
        st.integers(1, 16),
    ),
    st.tuples(st.just("recreate"), st.integers(0, NFILES - 1)),
)


def _apply(fs: FileSystem, inos: list, o):
    name = o[0]
    i = inos[o[1]]
    if name == "pwrite":
        return fs.pwrite(i, o[2], o[3], o[4])
    if name == "store":
        return fs.store(i, o[2], o[3], o[4])
    if name == "cow":
        return fs.cow_blocks(i, o[2], o[3])
    if name == "alloc":
        return fs.alloc_blocks(i, o[2], o[3])
    if name == "truncate":
        return fs.truncate(i, o[2])
    if name == "punch":
        return fs.punch(i, o[2], o[3])
    if name == "zero":
        return fs.zero_range(i, o[2], o[3], keep_size=bool(o[2] & 1))
    if name == "unshare":
        return fs.unshare(i, o[2], o[3])
    if name == "falloc":
        return fs.fallocate(i, o[2], o[3], keep_size=bool(o[3] & 1))
    if name == "clone":
        return fs.clone(i, inos[o[2]], o[3] * BS, o[4] * BS, o[5] * BS)
    if name == "clonefile":
        return fs.clone(i, inos[o[2]])
    if name == "dedupe":
        return fs.dedupe(i, inos[o[2]], o[3] * BS, o[3] * BS, o[4] * BS)
    if name == "recreate":
        fs.unlink(f"f{o[1]}")
        inos[o[1]] = fs.create(f"f{o[1]}")
        return fs.pwrite(inos[o[1]], 0, 3 * BS, 0x11)
    raise AssertionError(name)


def _snapshot(fs: FileSystem) -> tuple:
    def m(r: RunMap):
        return tuple(tuple(int(v) for v in a) for a in (r.start, r.length, *r.cols))

    files = tuple(
        (ino, ip.size, ip.reflink, m(ip.ext), m(ip.cow)) for ino, ip in sorted(fs.inodes.items())
    )
    return files, m(fs.refc), m(fs.content), m(fs.free), tuple(sorted(fs.counters().items()))


def _run(ops, fast_runs: int, small_insert: int, list_max: int) -> list:
    out = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fsmod, "_FAST_RUNS", fast_runs)
        mp.setattr(runsmod, "SMALL_INSERT", small_insert)
        mp.setattr(runsmod, "LIST_MAX", list_max)
        fs = FileSystem(320)
        inos = [fs.create(f"f{k}") for k in range(NFILES)]
        fs.pwrite(inos[0], 0, 40 * BS, 0x41)
        fs.clone(inos[1], inos[0])
        fs.pwrite(inos[1], 10 * BS, 2 * BS, 0x42)
        fs.pwrite(inos[2], 5 * BS, 30 * BS + 100, 0x43)
        for o in ops:
            try:
                ch = _apply(fs, inos, o)
                out.append(("ok", None if ch is None else dict(vars(ch))))
            except FsError as exc:
                out.append(("err", exc.errno))
            out.append(_snapshot(fs))
            out.append([fs.rmap(p) for p in range(0, 320, 23)])
            for ino in fs.inodes:
                size = fs.size(ino)
                out.append([tuple(vars(e).values()) for e in fs.bmap(ino, 0, size // BS + 2)])
                out.append(tuple(a.tolist() for a in fs.bmap_arrays(ino, 0, size // BS + 2)))
                out.append(fs.md5(ino))
        fs.check_invariants()
    return out


@pytest.mark.parametrize("thresholds", [(32, 64, 4096), (1, 1, 2)])
@given(ops=st.lists(op, min_size=1, max_size=30))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fast_paths_equal_numpy_paths(thresholds, ops):
    slow = _run(ops, -1, -1, -1)
    fast = _run(ops, *thresholds)
    assert len(fast) == len(slow)
    for k, (a, b) in enumerate(zip(fast, slow, strict=True)):
        assert a == b, f"step {k}: {a!r} != {b!r}"


def _iomap_by_bmap(fs: FileSystem, ino: int, first: int, n: int):
    """The DaxFS iomap before the fast path: walk bmap of the 512-block window."""
    ext = fs.bmap(ino, (first >> 9) * 512, 512)
    state = pb = None
    length = 0
    shared = False
    end = first + n
    for e in ext:
        e_end = e.fblock + e.nblocks
        if e_end <= first:
            continue
        if e.fblock >= end:
            break
        if state is None:
            state, shared = e.state, bool(e.shared)
            pb = e.pblock + (first - e.fblock) if e.pblock >= 0 else e.pblock
            length = min(e_end, end) - first
            continue
        if e.state != state or bool(e.shared) != shared:
            break
        if state == WRITTEN and e.pblock != pb + length:
            break
        length += min(e_end, end) - e.fblock
    if state is None:
        return HOLE, -1, n, False
    return state, pb, length, shared


@given(
    ops=st.lists(op, min_size=1, max_size=20),
    q=st.lists(
        st.tuples(
            st.integers(0, NFILES - 1), st.integers(0, 1100), st.sampled_from([1, 1, 2, 7, 512])
        ),
        min_size=1,
        max_size=10,
    ),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_iomap_equals_bmap_window_walk(ops, q):
    fs = FileSystem(2048)
    inos = [fs.create(f"f{k}") for k in range(NFILES)]
    fs.pwrite(inos[0], 0, 20 * BS, 0x41)
    fs.pwrite(inos[1], 500 * BS, 30 * BS, 0x42)
    for o in ops:
        try:
            _apply(fs, inos, o)
        except FsError:
            pass
    for f, first, n in q:
        if n == 512:
            first &= ~511
        n = min(n, ((first >> 9) + 1) * 512 - first)
        assert fs.iomap(inos[f], first, n) == _iomap_by_bmap(fs, inos[f], first, n)


@pytest.mark.parametrize("mask", [(True, False), (False,), (True,), (), (False, True, False)])
@given(
    rows=st.lists(
        st.tuples(
            st.integers(1, 4),
            st.integers(0, 3),
            st.integers(0, 2),
            st.integers(0, 1),
            st.integers(0, 1),
        ),
        max_size=12,
    )
)
@settings(max_examples=200, deadline=None)
def test_merge_list_runs_equals_merge_runs(mask, rows):
    pos = 0
    rs = []
    for gap, n, p, c, d in rows:
        pos += gap - 1
        rs.append((pos, n + 1, *(p, c, d)[: len(mask)]))
        pos += n + 1
    got = merge_list_runs(rs, mask)
    if rs:
        a = [np.array(x, dtype=np.int64) for x in zip(*rs, strict=True)]
        s, ln, cols = merge_runs(a[0], a[1], a[2:], mask)
        want = list(zip(s.tolist(), ln.tolist(), *[c.tolist() for c in cols], strict=True))
    else:
        want = []
    assert got == want


splice_op = st.tuples(
    st.integers(0, 40),
    st.integers(0, 12),
    st.lists(
        st.tuples(st.integers(0, 11), st.integers(1, 4), st.integers(0, 3), st.integers(0, 1)),
        max_size=3,
    ),
)


@pytest.mark.parametrize("mask", [(True, False), (False,), (True,), ()])
@given(ops=st.lists(splice_op, min_size=1, max_size=40))
@settings(max_examples=200, deadline=None)
def test_list_splice_equals_numpy_splice(mask, ops):
    fast, slow = RunMap(mask), RunMap(mask)
    for lo, span, new in ops:
        hi = lo + span
        rows = []
        pos = lo
        for gap, n, c0, c1 in new:  # disjoint rows inside [lo, hi)
            s = pos + gap % 3
            if s + n > hi:
                break
            rows.append((s, n, *((c0, c1)[: len(mask)])))
            pos = s + n
        a = fast.splice_rows(lo, hi, rows)
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in range(2 + len(mask))]
        arr = [np.array(c, dtype=np.int64) for c in cols]
        b = slow._splice_np(lo, hi, arr[0], arr[1], arr[2:])
        assert a == b
        assert fast.is_list_form() and not slow.is_list_form()
        for x, y in zip(
            (fast.start, fast.length, *fast.cols),
            (slow.start, slow.length, *slow.cols),
            strict=True,
        ):
            assert x.tolist() == y.tolist()
