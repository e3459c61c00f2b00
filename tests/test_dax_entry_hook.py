"""``DaxFS.entry_hook`` reports exactly the DAX entry stores and erasures of every operation
(eviction included): replaying the reported events on a copy of the entry dicts taken before
an operation gives the entry dicts after it, and each event is consistent with that replay
(a store into an empty slot, an erase of the value present). Also checks the xarray's cached
root shift against a brute-force one after every operation."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.dax import DaxFS
from sim.dax.xarray_dax import DAX_PMD, PG_PMD_NR, XA_CHUNK_SHIFT
from sim.fs import FsError

PAGE = 4096
PMD_BYTES = PG_PMD_NR * PAGE
FILES = ("a", "b", "c")
op = st.one_of(
    st.tuples(st.just("pwrite"), st.sampled_from(FILES), st.integers(0, 40), st.integers(1, 9)),
    st.tuples(st.just("bigwrite"), st.sampled_from(FILES)),
    st.tuples(
        st.just("clone"),
        st.sampled_from(FILES),
        st.sampled_from(FILES),
        st.integers(0, 8),
        st.integers(0, 8),
    ),
    st.tuples(st.just("mread"), st.sampled_from(FILES), st.integers(0, 40), st.integers(1, 9)),
    st.tuples(st.just("mwrite"), st.sampled_from(FILES), st.integers(0, 40), st.integers(1, 9)),
    st.tuples(st.just("pmdfault"), st.sampled_from(FILES), st.booleans()),
    st.tuples(st.just("truncate"), st.sampled_from(FILES), st.integers(0, 48)),
    st.tuples(st.just("punch"), st.sampled_from(FILES), st.integers(0, 40), st.integers(1, 9)),
    st.tuples(st.just("zero"), st.sampled_from(FILES), st.integers(0, 40), st.integers(1, 9)),
    st.tuples(st.just("unshare"), st.sampled_from(FILES), st.integers(0, 40), st.integers(1, 9)),
    st.tuples(st.just("fsync"), st.sampled_from(FILES)),
    st.tuples(st.just("poison"), st.sampled_from(FILES), st.integers(0, 40)),
    st.tuples(st.just("recreate"), st.sampled_from(FILES)),
    st.tuples(st.just("unmount"), st.just("a")),
)


def _entries(d: DaxFS) -> dict:
    return {a.mid: dict(a.xa.entries) for a in d.spaces.values() if a.xa.entries}


def _brute_root_shift(xa) -> int:
    if not xa.entries:
        return -1
    if len(xa.entries) == 1 and 0 in xa.entries and not xa.entries[0] & DAX_PMD:
        return -1
    last = max(i + (PG_PMD_NR if v & DAX_PMD else 1) - 1 for i, v in xa.entries.items())
    b = last.bit_length()
    root = 0 if b <= XA_CHUNK_SHIFT else XA_CHUNK_SHIFT * (-(-b // XA_CHUNK_SHIFT) - 1)
    if any(v & DAX_PMD for v in xa.entries.values()):
        root = max(root, XA_CHUNK_SHIFT)
    return root


class _Files:
    """The DaxFS, its files and one mapping per file (re-created after an unlink/unmount)."""

    def __init__(self, d: DaxFS):
        self.d = d
        self.ino: dict = {}
        self.vid: dict = {}
        for f in FILES:
            self.make(f)

    def make(self, f: str) -> None:
        d = self.d
        self.ino[f] = d.open(f, create=True)[0]
        self.vid[f] = d.mmap(1, self.ino[f], 0, 2 * PMD_BYTES)

    def run(self, o) -> None:
        d = self.d
        name, f = o[0], o[1]
        ino, vid = self.ino[f], self.vid[f]
        if name == "pwrite":
            d.pwrite(ino, o[2] * 1000, o[3] * 1000, 0x40 + o[2])
        elif name == "bigwrite":
            d.pwrite(ino, 0, PMD_BYTES, 0x33)
        elif name == "clone":
            d.clone(self.ino[o[2]], ino, o[3] * PAGE, o[4] * PAGE, 4 * PAGE)
        elif name == "mread":
            d.mread(vid, o[2] * 1000, o[3] * 100)
        elif name == "mwrite":
            d.mwrite(vid, o[2] * 1000, o[3] * 100, 0x60 + o[3])
        elif name == "pmdfault":
            d.fault(vid, 7, write=o[2])
        elif name == "truncate":
            d.truncate(ino, o[2] * 1000)
        elif name == "punch":
            d.punch(ino, o[2] * 1000, o[3] * 1000)
        elif name == "zero":
            d.zero_range(ino, o[2] * 1000, o[3] * 1000)
        elif name == "unshare":
            d.unshare(ino, o[2] * 1000, o[3] * 1000)
        elif name == "fsync":
            d.fsync(ino)
        elif name == "poison":
            d.memory_failure(vid, o[2] * 1000, 1)
        elif name == "recreate":
            d.munmap(vid)
            d.unlink(f)
            self.make(f)
        elif name == "unmount":
            d.unmount()
            for g in FILES:
                self.make(g)


@pytest.mark.parametrize("variant", ["single-owner", "cow-index", "page-share", "folio-share"])
@given(ops=st.lists(op, min_size=1, max_size=25), late=st.integers(0, 3))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_entry_hook_reports_exactly_the_entry_changes(variant, ops, late):
    d = DaxFS(1 << 12, variant)
    events: list = []
    files = _Files(d)
    for k, o in enumerate(ops):
        if k == late:  # installed on the address_spaces that exist, and on later ones
            d.entry_hook = lambda mid, idx, old, new: events.append((mid, idx, old, new))
        before = _entries(d)
        events.clear()
        try:
            files.run(o)
        except FsError:
            pass
        after = _entries(d)
        if k < late:
            assert not events
            continue
        state = {m: dict(e) for m, e in before.items()}
        for mid, idx, old, new in events:
            cur = state.setdefault(mid, {})
            if old is None:
                assert new is not None and idx not in cur, (mid, idx, old, new)
                cur[idx] = new
            else:
                assert new is None and cur.get(idx) == old, (mid, idx, old, new)
                del cur[idx]
        assert {m: e for m, e in state.items() if e} == after
        for a in d.spaces.values():
            assert a.xa.root_shift() == _brute_root_shift(a.xa)


def test_entry_hook_none_and_getter():
    d = DaxFS(1 << 10, "page-share")
    assert d.entry_hook is None
    seen = []
    d.entry_hook = seen.append  # wrong arity is the caller's business: only check the getter
    assert d.entry_hook == seen.append
    d.entry_hook = None
    ino = d.open("f", create=True)[0]
    d.pwrite(ino, 0, PAGE, 1)
    d.mread(d.mmap(1, ino, 0, PAGE), 0, PAGE)
    assert not seen and d.xarray(ino).entries
