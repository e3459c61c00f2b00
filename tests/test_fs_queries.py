"""The list-returning queries the hunt uses (``shared_rows``, ``byte_runs_list``) equal the
array queries they abbreviate (``bmap_arrays``, ``byte_runs``), over the
states a hunt reaches (small files, and files fragmented past the list fast paths)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.fs import FileSystem, FsError
from sim.hunt import Session
from sim.hunt.search import Draws, generate_op
from sim.hunt.session import OP_KINDS


def _states(seed: int, n_ops: int):
    rng = Draws(np.random.default_rng(seed))
    s = Session("page-share", snapshot=False, record=False)
    for _ in range(n_ops):
        op = generate_op(rng, s, OP_KINDS, 3)
        if op is not None and s.apply(op):
            yield s.dax.fs
    s.close()


def _fragment(fs):
    """A file of 80 one-block extents, every other one shared: past the list fast paths."""
    a = fs.create("frag")
    b = fs.create("src")
    fs.pwrite(b, 0, 40 * 4096, 0x61)
    for i in range(80):
        if i % 2:
            fs.clone(a, b, (i // 2) * 4096, i * 4096, 4096)
        else:
            fs.pwrite(a, i * 4096, 4096, 0x62 + i % 3)
    return a


def test_list_queries_equal_the_array_queries():
    n = shared = 0
    for seed in range(4):
        for fs in _states(seed, 60):
            for p in fs.paths():
                ino = fs.lookup(p)
                nb = -(-fs.size(ino) // 4096)
                for b0, cnt in ((0, nb), (nb // 2, nb - nb // 2 + 3), (1, 2)):
                    if cnt <= 0:
                        continue
                    f, ln, _p, _st, c = fs.bmap_arrays(ino, b0, cnt)
                    want = list(zip(f[c > 1].tolist(), ln[c > 1].tolist(), strict=True))
                    assert fs.shared_rows(ino, b0, cnt) == want
                    shared += bool(want)
                size = fs.size(ino)
                for off, length in ((0, size), (size // 3, size), (5, 3 * 4096 + 7)):
                    lens, vals = fs.byte_runs(ino, off, length)
                    assert fs.byte_runs_list(ino, off, length) == (lens.tolist(), vals.tolist())
                n += 1
    assert n > 100 and shared > 10
    fs = FileSystem(4096)
    a = _fragment(fs)
    f, ln, _p, _st, c = fs.bmap_arrays(a, 0, 80)
    assert fs.shared_rows(a, 0, 80) == list(zip(f[c > 1].tolist(), ln[c > 1].tolist(), strict=True))
    assert len(fs.shared_rows(a, 0, 80)) == 40
    lens, vals = fs.byte_runs(a, 0, 80 * 4096)
    assert fs.byte_runs_list(a, 0, 80 * 4096) == (lens.tolist(), vals.tolist())
    assert fs.shared_rows(a, 0, 0) == []


@pytest.mark.parametrize("size", [(1 << 63) - 4096 - 1, (1 << 63) - 2, (1 << 63) - 1])
def test_byte_runs_of_a_sparse_file_near_the_size_limit(size):
    """A file of holes only, up to 2**63 - 1 bytes: its one run of zeros ends at EOF (the
    array path sized the run to the end of the last block, 2**63 bytes, past int64)."""
    fs = FileSystem(64)
    ino = fs.create("a")
    fs.truncate(ino, size)
    lens, vals = fs.byte_runs(ino, 0, size + 10)
    assert lens.tolist() == [size] and vals.tolist() == [0]
    assert fs.byte_runs_list(ino, 0, size) == ([size], [0])
    assert fs.compare(ino, 0, ino, 0, size)
    lens, vals = fs.byte_runs(ino, 4096 * 100 + 7, size)
    assert lens.tolist() == [size - 4096 * 100 - 7]


@pytest.mark.parametrize("size", [1 << 40, (1 << 63) - 2, (1 << 63) - 1])
def test_byte_runs_of_a_file_near_the_size_limit(size):
    """A sparse file up to 2**63 - 1 bytes reads as its data then one run of zeros (the
    array path summed a run's start and length past 2**63 and dropped the hole)."""
    fs = FileSystem(1024)
    ino = fs.create("a")
    fs.pwrite(ino, 0, 100, 0x61)
    fs.pwrite(ino, 70 * 4096, 4096, 0x62)  # more than 64 blocks: past the list fast path
    fs.truncate(ino, size)
    lens, vals = fs.byte_runs(ino, 0, size)
    assert lens.tolist() == [100, 70 * 4096 - 100, 4096, size - 71 * 4096]
    assert vals.tolist() == [0x61, 0, 0x62, 0]
    tail = fs.byte_runs(ino, size - 10_000, 50_000)
    assert tail[0].tolist() == [10_000] and tail[1].tolist() == [0]
    assert fs.byte_runs_list(ino, 0, size) == (lens.tolist(), vals.tolist())


def test_refcount_outside_the_device_is_einval():
    fs = FileSystem(64)
    assert fs.refcount(0) == 0 and fs.refcount(63) == 0
    for p in (-1, 64, 1 << 40):
        with pytest.raises(FsError) as ei:
            fs.refcount(p)
        assert ei.value.errno == "EINVAL"
