"""Random operation sequences on DaxFS under every variant: no crash, the xarray's node
bookkeeping matches a brute-force recount, live entries stay inside their files, and
eviction of every file leaves no DAX entry behind."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.dax import DaxFS
from sim.dax.xarray_dax import DAX_PMD, XA_CHUNK_SHIFT
from sim.fs import FsError

PAGE = 4096
FILES = ("a", "b", "c")
op = st.one_of(
    st.tuples(st.just("pwrite"), st.sampled_from(FILES), st.integers(0, 40), st.integers(1, 9)),
    st.tuples(
        st.just("clone"),
        st.sampled_from(FILES),
        st.sampled_from(FILES),
        st.integers(0, 8),
        st.integers(0, 8),
    ),
    st.tuples(st.just("mread"), st.sampled_from(FILES), st.integers(0, 40), st.integers(1, 9)),
    st.tuples(st.just("mwrite"), st.sampled_from(FILES), st.integers(0, 40), st.integers(1, 9)),
    st.tuples(st.just("truncate"), st.sampled_from(FILES), st.integers(0, 48)),
    st.tuples(st.just("punch"), st.sampled_from(FILES), st.integers(0, 40), st.integers(1, 9)),
    st.tuples(st.just("fsync"), st.sampled_from(FILES)),
    st.tuples(st.just("poison"), st.sampled_from(FILES), st.integers(0, 40)),
)


def _recount_nodes(xa) -> int:
    root = xa.root_shift()
    if root < 0:
        return 0
    nodes = set()
    for i, v in xa.entries.items():
        leaf = XA_CHUNK_SHIFT if v & DAX_PMD else 0
        for s in range(leaf, root + 1, XA_CHUNK_SHIFT):
            nodes.add((s, i >> (s + XA_CHUNK_SHIFT)))
    return len(nodes)


@pytest.mark.parametrize("variant", ["single-owner", "cow-index", "page-share", "folio-share"])
@given(ops=st.lists(op, min_size=1, max_size=25))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_ops_keep_the_model_consistent(variant, ops):
    d = DaxFS(1 << 12, variant)
    inos = {f: d.open(f, create=True)[0] for f in FILES}
    vids = {f: d.mmap(1, inos[f], 0, 48 * PAGE) for f in FILES}
    for o in ops:
        name, f = o[0], o[1]
        ino = inos[f]
        try:
            if name == "pwrite":
                d.pwrite(ino, o[2] * 1000, o[3] * 1000, 0x40 + o[2])
            elif name == "clone":
                d.clone(inos[o[2]], ino, o[3] * PAGE, o[4] * PAGE, 4 * PAGE)
            elif name == "mread":
                d.mread(vids[f], o[2] * 1000, o[3] * 100)
            elif name == "mwrite":
                d.mwrite(vids[f], o[2] * 1000, o[3] * 100, 0x60 + o[3])
            elif name == "truncate":
                d.truncate(ino, o[2] * 1000)
            elif name == "punch":
                d.punch(ino, o[2] * 1000, o[3] * 1000)
            elif name == "fsync":
                d.fsync(ino)
            elif name == "poison":
                d.memory_failure(vids[f], o[2] * 1000, 1)
        except FsError:
            pass
        for g in FILES:
            xa = d.xarray(inos[g])
            if xa is None:
                continue
            assert xa.node_count() == _recount_nodes(xa)
            # an order-0 entry in a PMD entry's slot counts the 512 (DaxXArray.store_in_slot)
            assert xa.nrpages == sum(
                512 if v & DAX_PMD or i in xa.wide else 1 for i, v in xa.entries.items()
            )
            size_pages = -(-d.fs.size(inos[g]) // PAGE)
            for i, v in xa.entries.items():
                assert i < max(size_pages, 1) or v & DAX_PMD
    for f in FILES:
        d.munmap(vids[f])
        d.unlink(f)
    assert d.entries()["pfn"].size == 0 and not d.spaces
    if variant == "page-share":
        pfn, _m, _i = d.mm.state()
        assert pfn.size == 0, "page-share balances every association"
