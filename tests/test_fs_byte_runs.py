"""``FileSystem.byte_runs`` is what ``pread`` returns, as coalesced constant-byte runs, on
random files (patterned writes, clones, punches, truncates, stores, preallocation), for
ranges inside, across and past EOF; both its list path (short ranges) and its numpy path
(longer ranges / many extents) are exercised. ``compare`` agrees with comparing the bytes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.fs import FileSystem, FsError

BS = 4096
NFILES = 3

op = st.one_of(
    st.tuples(
        st.just("pwrite"),
        st.integers(0, NFILES - 1),
        st.integers(0, 90 * BS),
        st.integers(1, 9 * BS),
        st.integers(0, 255),
    ),
    st.tuples(
        st.just("store"),
        st.integers(0, NFILES - 1),
        st.integers(0, 60 * BS),
        st.integers(1, 2 * BS),
        st.integers(0, 255),
    ),
    st.tuples(st.just("truncate"), st.integers(0, NFILES - 1), st.integers(0, 100 * BS)),
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
)


def _apply(fs: FileSystem, inos: list, o) -> None:
    name, i = o[0], inos[o[1]]
    if name == "pwrite":
        fs.pwrite(i, o[2], o[3], o[4])
    elif name == "store":
        fs.store(i, o[2], o[3], o[4])
    elif name == "truncate":
        fs.truncate(i, o[2])
    elif name == "punch":
        fs.punch(i, o[2], o[3])
    elif name == "zero":
        fs.zero_range(i, o[2], o[3])
    elif name == "falloc":
        fs.fallocate(i, o[2], o[3], keep_size=bool(o[3] & 1))
    elif name == "clone":
        fs.clone(i, inos[o[2]], o[3] * BS, o[4] * BS, o[5] * BS)


def _runs_of(data: bytes) -> tuple[list, list]:
    b = np.frombuffer(data, dtype=np.uint8)
    if b.size == 0:
        return [], []
    head = np.flatnonzero(np.concatenate([[True], b[1:] != b[:-1]]))
    ends = np.concatenate([head[1:], [b.size]])
    return (ends - head).tolist(), b[head].astype(np.int64).tolist()


@given(
    ops=st.lists(op, max_size=25),
    q=st.lists(
        st.tuples(st.integers(0, NFILES - 1), st.integers(0, 110 * BS), st.integers(0, 110 * BS)),
        min_size=1,
        max_size=8,
    ),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_byte_runs_equal_runs_of_pread(ops, q):
    fs = FileSystem(1024, fill_byte=0x5A)
    inos = [fs.create(f"f{k}") for k in range(NFILES)]
    fs.pwrite(inos[0], 100, 70 * BS, 0x41)
    for o in ops:
        try:
            _apply(fs, inos, o)
        except FsError:
            pass
    for f, off, ln in q:
        lens, vals = fs.byte_runs(inos[f], off, ln)
        assert lens.dtype == np.int64 and vals.dtype == np.int64
        want = _runs_of(fs.pread(inos[f], off, ln))
        assert (lens.tolist(), vals.tolist()) == want
        if len(lens) > 1:
            assert (vals[1:] != vals[:-1]).all() and (lens > 0).all()
        g = (f + 1) % NFILES
        same = fs.pread(inos[f], off, ln) == fs.pread(inos[g], off // 2, ln)
        assert fs.compare(inos[f], off, inos[g], off // 2, ln) == same


def test_byte_runs_rejects_negative_ranges_and_unknown_inodes():
    fs = FileSystem(64)
    ino = fs.create("f")
    fs.pwrite(ino, 0, 3 * BS, 7)
    for off, ln in ((-1, 5), (0, -5)):
        with pytest.raises(FsError) as e:
            fs.byte_runs(ino, off, ln)
        assert e.value.errno == "EINVAL"
    with pytest.raises(FsError) as e:
        fs.byte_runs(ino + 99, 0, 1)
    assert e.value.errno == "ENOENT"
    lens, vals = fs.byte_runs(ino, 5 * BS, 10)  # past EOF: nothing
    assert lens.size == 0 and vals.size == 0
