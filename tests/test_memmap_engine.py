"""The compiled batch engine equals the per-page reference on random operation sequences."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.memmap import OP_ASSOCIATE, OP_DISASSOCIATE, PMD_NPAGES, VARIANTS, MemMap, PageState

NPAGES = 4 * PMD_NPAGES  # four PMD blocks
HOT = (0, 1, 5, 511, 512, 700, 1024, 2047)  # block heads, tails and edges


@st.composite
def operations(draw):
    n = draw(st.integers(1, 40))
    rows = []
    for _ in range(n):
        op = draw(st.sampled_from((OP_ASSOCIATE, OP_DISASSOCIATE)))
        if draw(st.integers(0, 3)) == 0:
            npages = PMD_NPAGES
            pfn = PMD_NPAGES * draw(st.integers(0, NPAGES // PMD_NPAGES - 1))
        else:
            npages = 1
            pfn = draw(st.one_of(st.sampled_from(HOT), st.integers(0, NPAGES - 1)))
        mapping = draw(st.integers(1, 4))  # few files: owners, foreigners
        index = draw(st.one_of(st.just(0), st.integers(0, 5), st.integers(0, 10**6)))
        if npages == PMD_NPAGES:
            index -= index % PMD_NPAGES
        flag = draw(st.integers(0, 1))  # shared/cow on associate, trunc on disassociate
        rows.append((op, pfn, npages, mapping, index, flag))
    return np.array(rows, dtype=np.int64).T


def _reference(variant, ops):
    st_ = PageState(NPAGES)
    written = []
    for op, pfn, npages, mapping, index, flag in ops.T.tolist():
        if op == OP_ASSOCIATE:
            written.append(variant.associate(st_, pfn, npages, mapping, index, bool(flag)))
        else:
            written.append(variant.disassociate(st_, pfn, npages, mapping, bool(flag)))
    return st_, written


def _check_equal(mm, ref, variant):
    want_map = np.array(ref.mapping, dtype=np.int64)
    want_idx = np.array(ref.index, dtype=np.int64)
    pfn, got_m, got_i = mm.state()
    full_m = np.zeros(NPAGES, np.int64)
    full_i = np.zeros(NPAGES, np.int64)
    full_m[pfn], full_i[pfn] = got_m, got_i
    np.testing.assert_array_equal(full_m, want_map)
    np.testing.assert_array_equal(full_i, want_idx)
    want_w = {s: ref.warnings.get(s, 0) for s in variant.warning_sites}
    assert set(ref.warnings) <= set(variant.warning_sites)
    assert mm.warnings == want_w
    assert mm.warnings_latched == {s: int(c > 0) for s, c in want_w.items()}
    assert mm.counters == ref.counters
    residue = int(np.count_nonzero((want_map == -1) & (want_idx == 0)))
    assert mm.residue_pages() == residue
    assert mm.phantom_pages() == len(ref.phantoms)
    for p in ref.phantoms:  # a phantom is NULL with a stale non-zero word
        assert ref.mapping[p] == 0 and ref.index[p] != 0
    want_h = np.trim_zeros(_reference_histogram(ref, variant), "b")
    np.testing.assert_array_equal(np.trim_zeros(mm.share_histogram(), "b"), want_h)
    _check_gauges(mm, ref, want_h)


def _check_gauges(mm, ref, want_h):
    """The incremental gauges equal a scan of the words and the reference's own tallies."""
    scanned = mm.scan_stats()
    assert mm.residue_pages() == scanned["residue_pages"] == ref.residue_pages()
    assert mm.phantom_pages() == scanned["phantom_pages"] == len(ref.phantoms)
    np.testing.assert_array_equal(mm.share_histogram(), scanned["share_histogram"])
    np.testing.assert_array_equal(np.array(ref.share_histogram(), np.int64), want_h)
    assert mm.share_degree_max() == (want_h.size - 1 if want_h.size else 0)


def _reference_histogram(ref, variant):
    """Pages by share degree, counted page by page from the reference state."""
    degrees = {}
    for p in range(NPAGES):
        if variant.flag_sentinel and ref.mapping[p] == -1:
            degrees[ref.index[p]] = degrees.get(ref.index[p], 0) + 1
        elif variant.folio and ref.mapping[p] == 0 and ref.index[p] != 0 and p not in ref.phantoms:
            size = PMD_NPAGES if ref.order[p // PMD_NPAGES] == 9 and p % PMD_NPAGES == 0 else 1
            degrees[ref.index[p]] = degrees.get(ref.index[p], 0) + size
    h = np.zeros(max(degrees, default=-1) + 1, np.int64)
    for d, c in degrees.items():
        h[d] = c
    return h


def _run_all(name, ops):
    variant = VARIANTS[name]
    ref, written = _reference(variant, ops)
    batch = MemMap(NPAGES, variant)
    batch.apply(*ops)
    _check_equal(batch, ref, variant)
    single = MemMap(NPAGES, variant)
    got = [
        single.associate(pfn, n, m, i, bool(f))
        if op == OP_ASSOCIATE
        else single.disassociate(pfn, n, m, bool(f))
        for op, pfn, n, m, i, f in ops.T.tolist()
    ]
    assert got == written
    _check_equal(single, ref, variant)
    assert batch.summary() == single.summary()


_settings = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(operations())
def test_single_owner_engine_equals_reference(ops):
    _run_all("single-owner", ops)


@_settings
@given(operations())
def test_cow_index_engine_equals_reference(ops):
    _run_all("cow-index", ops)


@_settings
@given(operations())
def test_page_share_engine_equals_reference(ops):
    _run_all("page-share", ops)


@_settings
@given(operations())
def test_folio_share_engine_equals_reference(ops):
    _run_all("folio-share", ops)


@_settings
@given(operations())
def test_folio_share_reset_engine_equals_reference(ops):
    _run_all("folio-share-reset", ops)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(VARIANTS)), st.integers(1, 40), st.integers(0, 2**32))
def test_hot_page_sequences_equal_reference(name, n, seed):
    """Long runs on one page (re-faults, shares, drops) exercise counts far from zero."""
    rng = np.random.default_rng(seed)
    op = rng.integers(0, 2, n * 5)
    ops = np.stack(
        [
            op,
            np.full(op.size, 700),
            np.ones(op.size, np.int64),
            rng.integers(1, 3, op.size),
            rng.integers(0, 3, op.size),
            rng.integers(0, 2, op.size),
        ]
    ).astype(np.int64)
    _run_all(name, ops)


def test_batch_split_into_chunks_equals_one_batch():
    rng = np.random.default_rng(7)
    n = 5000
    npg = np.where(rng.random(n) < 0.2, PMD_NPAGES, 1)
    pfn = np.where(
        npg == PMD_NPAGES, PMD_NPAGES * rng.integers(0, 4, n), rng.integers(0, NPAGES, n)
    )
    ops = np.stack(
        [
            rng.integers(0, 2, n),
            pfn,
            npg,
            rng.integers(1, 4, n),
            rng.integers(0, 9, n) * PMD_NPAGES,
            rng.integers(0, 2, n),
        ]
    ).astype(np.int64)
    for name in VARIANTS:
        a, b = MemMap(NPAGES, name), MemMap(NPAGES, name)
        a.apply(*ops)
        for lo in range(0, n, 777):
            b.apply(*ops[:, lo : lo + 777])
        assert a.summary() == b.summary()
        np.testing.assert_array_equal(a.mapping, b.mapping)
        np.testing.assert_array_equal(a.index, b.index)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(VARIANTS)), st.integers(0, 2**32))
def test_gauges_equal_scan_after_long_random_batches(name, seed):
    """Thousands of rows over a few hot PMD blocks (folios prepped over set tails, splits,
    phantoms inside later PMD folios): the O(1) gauges still equal a scan."""
    rng = np.random.default_rng(seed)
    n = 3000
    npg = np.where(rng.random(n) < 0.15, PMD_NPAGES, 1)
    pfn = np.where(
        npg == PMD_NPAGES, PMD_NPAGES * rng.integers(0, 4, n), rng.integers(0, NPAGES, n)
    )
    ops = np.stack(
        [
            rng.integers(0, 2, n),
            pfn,
            npg,
            rng.integers(1, 4, n),
            rng.integers(0, 3, n) * PMD_NPAGES,
            rng.integers(0, 2, n),
        ]
    ).astype(np.int64)
    mm = MemMap(NPAGES, name)
    for lo in range(0, n, 500):
        mm.apply(*ops[:, lo : lo + 500])
        scanned = mm.scan_stats()
        assert mm.residue_pages() == scanned["residue_pages"]
        assert mm.phantom_pages() == scanned["phantom_pages"]
        np.testing.assert_array_equal(mm.share_histogram(), scanned["share_histogram"])
