"""Known cases of issue 2 §5, the variant registry, the MemMap API and its memory budget."""

from __future__ import annotations

import numpy as np
import pytest

from sim.errors import InputError
from sim.memmap import (
    OP_ASSOCIATE,
    OP_DISASSOCIATE,
    PMD_NPAGES,
    VARIANTS,
    MemMap,
    PageState,
    Variant,
    get_variant,
)
from sim.memmap.variants import PageShare

N = 2048


def _n_shared_then_n_drops(variant, n, pfn=7):
    mm = MemMap(N, variant)
    for f in range(1, n + 1):
        mm.associate(pfn, 1, f, 100 + f, True)
    for f in range(1, n + 1):
        mm.disassociate(pfn, 1, f, False)
    return mm


@pytest.mark.parametrize("n", [1, 2, 5])
def test_cow_index_balanced_sequence_leaves_flag_with_zero_count(n):
    mm = _n_shared_then_n_drops("cow-index", n)
    assert mm.page(7) == (-1, 0)
    assert mm.residue_pages() == 1
    # only the (N+1)-th disassociation cleans it (after a transient wrap)
    mm.disassociate(7, 1, 1, False)
    assert mm.page(7) == (0, 0) and mm.residue_pages() == 0


@pytest.mark.parametrize("variant", ["page-share", "folio-share", "folio-share-reset"])
@pytest.mark.parametrize("n", [1, 2, 5])
def test_balanced_sequence_ends_clean_in_later_designs(variant, n):
    mm = _n_shared_then_n_drops(variant, n)
    if variant == "folio-share" and n == 1:
        # one mapper is a plain Owned(M, 101) folio: its order-0 put leaves a phantom
        assert mm.page(7) == (0, 101) and mm.phantom_pages() == 1
        return
    assert mm.page(7) == (0, 0)
    assert mm.residue_pages() == 0 and mm.phantom_pages() == 0
    assert mm.state()[0].size == 0


def test_cow_index_residue_warns_on_next_plain_associate():
    mm = _n_shared_then_n_drops("cow-index", 3)
    mm.associate(7, 1, 9, 0, False)
    assert mm.warnings["associate_mapping_set"] == 1
    assert mm.counters["owner_overwritten"] == 1 and mm.counters["flag_clear"] == 1


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_second_plain_associate_warns_mapping_set(variant):
    mm = MemMap(N, variant)
    mm.associate(3, 1, 1, 10, False)
    assert mm.warnings["associate_mapping_set"] == 0
    mm.associate(3, 1, 2, 20, False)
    assert mm.warnings["associate_mapping_set"] == 1
    assert mm.warnings_latched["associate_mapping_set"] == 1
    mm.associate(3, 1, 3, 30, False)
    assert mm.warnings["associate_mapping_set"] == 2  # raw keeps counting
    assert mm.warnings_latched["associate_mapping_set"] == 1  # printed once
    assert mm.page(3) == (3, 30) and mm.page_owner(3) == 3


def test_folio_share_order0_owner_put_at_nonzero_index_leaves_phantom():
    mm = MemMap(N, "folio-share")
    mm.associate(9, 1, 4, 77, False)
    mm.disassociate(9, 1, 4, True)
    assert mm.page(9) == (0, 77)  # mapping cleared, index/share left stale
    assert mm.phantom_pages() == 1
    assert mm.page_owner(9) == 0
    pfn, m, i = mm.state()
    assert pfn.tolist() == [9] and m.tolist() == [0] and i.tolist() == [77]  # tag normalised
    assert mm.share_degree_max() == 0  # phantoms are not counted as sharing
    # a re-fault on a shared extent: the phantom reads as Shared(77) and becomes Shared(78)
    mm.associate(9, 1, 4, 77, True)
    assert mm.page(9) == (0, 78) and mm.phantom_pages() == 1
    mm.disassociate(9, 1, 4, False)
    assert mm.page(9) == (0, 77)


def test_folio_share_reset_has_no_phantom():
    mm = MemMap(N, "folio-share-reset")
    mm.associate(9, 1, 4, 77, False)
    mm.disassociate(9, 1, 4, True)
    assert mm.page(9) == (0, 0) and mm.phantom_pages() == 0


def test_folio_share_order0_put_at_index_zero_is_clean():
    mm = MemMap(N, "folio-share")
    mm.associate(9, 1, 4, 0, False)
    mm.disassociate(9, 1, 4, False)
    assert mm.page(9) == (0, 0) and mm.phantom_pages() == 0


@pytest.mark.parametrize("variant", ["single-owner", "cow-index", "page-share"])
def test_pmd_entries_set_index_base_plus_i(variant):
    mm = MemMap(N, variant)
    assert mm.associate(1024, PMD_NPAGES, 5, 4096, False) == PMD_NPAGES
    pfn, m, i = mm.state()
    np.testing.assert_array_equal(pfn, np.arange(1024, 1024 + PMD_NPAGES))
    assert (m == 5).all()
    np.testing.assert_array_equal(i, 4096 + np.arange(PMD_NPAGES))
    assert mm.disassociate(1024, PMD_NPAGES, 5, True) == PMD_NPAGES
    assert mm.state()[0].size == 0


def test_pmd_warnings_are_counted_per_page_before_v615():
    mm = MemMap(N, "page-share")
    mm.associate(0, PMD_NPAGES, 1, 0, False)
    mm.associate(0, PMD_NPAGES, 2, 0, False)
    assert mm.warnings["associate_mapping_set"] == PMD_NPAGES


def test_folio_share_pmd_is_one_order9_folio():
    mm = MemMap(N, "folio-share")
    assert mm.associate(512, PMD_NPAGES, 5, 4096, False) == PMD_NPAGES  # prep_compound_page
    assert mm.folio(700) == (512, 9, 5, 4096)
    assert mm.page(700) == (0, 0) and mm.page_owner(700) == 5
    pfn, m, i = mm.state()
    assert pfn.tolist() == [512] and m.tolist() == [5] and i.tolist() == [4096]
    # a second, shared PMD mapping shares the folio: one counter for 512 pages
    assert mm.associate(512, PMD_NPAGES, 6, 0, True) == 1
    assert mm.folio(512) == (512, 9, 0, 2)
    assert mm.share_histogram()[2] == PMD_NPAGES and mm.share_degree_max() == 2
    # a PTE entry inside the folio acts on the head and warns the order mismatch
    mm.associate(600, 1, 7, 88, True)
    assert mm.folio(600) == (512, 9, 0, 3)
    assert mm.warnings["associate_order_mismatch"] == 1
    assert mm.disassociate(512, PMD_NPAGES, 5, False) == 1
    assert mm.disassociate(600, 1, 7, False) == 1
    assert mm.disassociate(512, PMD_NPAGES, 6, False) == PMD_NPAGES  # final put splits
    assert mm.folio(700) == (700, 0, 0, 0) and mm.state()[0].size == 0
    assert mm.counters["pages_reset"] == PMD_NPAGES


def test_folio_share_pmd_init_over_compound_warns_folio_init_order():
    mm = MemMap(N, "folio-share")
    mm.associate(0, PMD_NPAGES, 1, 0, False)
    mm.associate(0, PMD_NPAGES, 2, 512, False)
    assert mm.warnings["associate_mapping_set"] == 1  # per folio, not per page
    assert mm.warnings["folio_init_order"] == 1
    assert mm.folio(3) == (0, 9, 2, 512)


def test_folio_share_shared_then_plain_associate_loses_count_silently():
    mm = MemMap(N, "folio-share")
    mm.associate(4, 1, 1, 0, True)
    mm.associate(4, 1, 2, 0, True)
    assert mm.page(4) == (0, 2)
    mm.associate(4, 1, 3, 50, False)
    assert mm.page(4) == (3, 50)
    assert mm.warnings["associate_mapping_set"] == 0
    assert mm.counters["owner_overwritten"] == 1


def test_single_owner_foreign_disassociate_warns_and_clears():
    mm = MemMap(N, "single-owner")
    mm.associate(4, 1, 1, 3, True)  # no sharing in this design: the flag is ignored
    mm.disassociate(4, 1, 2, False)
    assert mm.warnings["disassociate_foreign_mapping"] == 1
    assert mm.page(4) == (0, 0)


def test_counters_of_a_share_cycle_in_page_share():
    mm = MemMap(N, "page-share")
    mm.associate(8, 1, 1, 5, False)
    mm.associate(8, 1, 2, 5, True)
    assert mm.page(8) == (-1, 2)
    mm.disassociate(8, 1, 1, False)
    mm.disassociate(8, 1, 2, False)
    c = mm.counters
    assert (c["share_inc"], c["share_dec"], c["flag_set"], c["flag_clear"]) == (1, 2, 1, 1)
    assert c["pages_reset"] == 1 and c["page_updates"] == 4
    assert (c["associate_calls"], c["disassociate_calls"]) == (2, 2)


def test_share_histogram_counts_pages_by_degree():
    mm = MemMap(N, "page-share")
    for f in (1, 2, 3):
        mm.associate(10, 1, f, 0, True)
    mm.associate(11, 1, 1, 0, True)
    h = mm.share_histogram()
    assert h.dtype == np.int64 and h[3] == 1 and h[1] == 1 and h.sum() == 2
    assert mm.share_degree_max() == 3


def test_apply_rejects_bad_rows_and_applies_nothing():
    mm = MemMap(N, "page-share")
    ops = np.array([[OP_ASSOCIATE, OP_ASSOCIATE], [0, 5], [1, 7], [1, 1], [0, 0], [0, 0]])
    with pytest.raises(ValueError, match="row 1: field 'npages'"):
        mm.apply(*ops)
    assert mm.operations == 0 and mm.state()[0].size == 0
    with pytest.raises(ValueError, match="field 'pfn'"):
        mm.apply(*np.array([[OP_DISASSOCIATE], [100], [PMD_NPAGES], [1], [0], [0]]))
    with pytest.raises(ValueError, match="outside"):
        mm.associate(N, 1, 1, 0, False)


def test_variant_names_aliases_and_errors():
    assert list(VARIANTS) == [
        "single-owner",
        "cow-index",
        "page-share",
        "folio-share",
        "folio-share-reset",
    ]
    for alias, name in [
        ("v5.19", "single-owner"),
        ("v6.0", "cow-index"),
        ("v6.2", "page-share"),
        ("v6.15", "folio-share"),
        ("v7.1", "folio-share-reset"),
    ]:
        assert get_variant(alias).name == name
    assert all(v.in_kernel for v in VARIANTS.values())
    with pytest.raises(InputError, match="page-share"):
        get_variant("page-shared")
    with pytest.raises(InputError):
        get_variant("no_such_module_xyz:Design")
    assert get_variant("sim.memmap.variants:PageShare").name == "page-share"


class SlowPageShare(PageShare):
    """A user design without a compiled kernel: MemMap falls back to the reference."""

    name = "slow-page-share"
    batch_kernel = None


def test_user_variant_without_kernel_uses_reference_and_agrees():
    rng = np.random.default_rng(3)
    n = 400
    npg = np.where(rng.random(n) < 0.1, PMD_NPAGES, 1)
    pfn = np.where(npg == PMD_NPAGES, PMD_NPAGES * rng.integers(0, 4, n), rng.integers(0, N, n))
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
    fast, slow = MemMap(N, "page-share"), MemMap(N, SlowPageShare)
    assert isinstance(slow.variant, Variant) and slow._ref is not None
    fast.apply(*ops)
    slow.apply(*ops)
    a, b = fast.summary(), slow.summary()
    a.pop("variant"), b.pop("variant")
    assert a == b
    np.testing.assert_array_equal(fast.mapping, slow.mapping)


def test_reference_state_is_plain_python():
    st = PageState(1024)
    VARIANTS["cow-index"].associate(st, 0, PMD_NPAGES, 1, 0, True)
    assert st.mapping[:2] == [-1, -1] and st.index[511] == 1


def test_one_tebibyte_device_fits_in_4_3_gb_of_arrays():
    npages = 268_435_456
    for name in VARIANTS:
        assert MemMap.array_nbytes(npages, name) < 4.3e9
    small = MemMap(3 * PMD_NPAGES + 5, "folio-share")
    assert small.nbytes == MemMap.array_nbytes(3 * PMD_NPAGES + 5, "folio-share")
    assert small.nbytes <= 16 * small.npages + small.npages // PMD_NPAGES + 1


@pytest.mark.parametrize("variant", ["cow-index", "page-share", "folio-share"])
def test_share_degree_beyond_the_exact_bins_falls_back_to_a_scan(variant):
    from sim.memmap.layout import HIST_BINS

    mm = MemMap(N, variant)
    n = HIST_BINS + 10
    ops = np.array([[OP_ASSOCIATE] * n, [5] * n, [1] * n, range(1, n + 1), [0] * n, [1] * n])
    ops[4, 0] = 3  # an owner first: folio-share makes it Shared on the second associate
    ops[5, 0] = 0
    mm.apply(*ops)
    degree = n  # the owner, then n - 1 sharers: the count is n in every design
    assert mm.share_degree_max() == degree
    h = mm.share_histogram()
    assert h.size == degree + 1 and h[degree] == 1 and h.sum() == 1
    assert mm.scan_stats()["share_histogram"].tolist() == h.tolist()
    # back below the bins: the O(1) histogram is exact again
    drops = np.array([[OP_DISASSOCIATE] * 20, [5] * 20, [1] * 20, [1] * 20, [0] * 20, [0] * 20])
    mm.apply(*drops)
    assert mm.share_degree_max() == degree - 20
    assert mm.share_histogram().tolist() == mm.scan_stats()["share_histogram"].tolist()


@pytest.mark.parametrize("variant", ["cow-index", "folio-share"])
def test_user_design_without_kernel_scans_for_gauges(variant):
    base = type(VARIANTS[variant])
    slow = type("Slow", (base,), {"name": "slow", "batch_kernel": None, "op_kernel": None})
    rng = np.random.default_rng(5)
    n = 600
    npg = np.where(rng.random(n) < 0.1, PMD_NPAGES, 1)
    pfn = np.where(npg == PMD_NPAGES, PMD_NPAGES * rng.integers(0, 4, n), rng.integers(0, N, n))
    ops = np.stack(
        [
            rng.integers(0, 2, n),
            pfn,
            npg,
            rng.integers(1, 4, n),
            rng.integers(0, 3, n),
            rng.integers(0, 2, n),
        ]
    ).astype(np.int64)
    fast, ref = MemMap(N, variant), MemMap(N, slow)
    assert ref._op is None and not ref._gauged
    fast.apply(*ops)
    ref.apply(*ops)
    assert fast.residue_pages() == ref.residue_pages()
    assert fast.phantom_pages() == ref.phantom_pages()
    assert fast.share_histogram().tolist() == ref.share_histogram().tolist()
    assert ref.residue_pages() == ref._ref.residue_pages()
    assert ref.share_histogram().tolist() == ref._ref.share_histogram()


def test_single_op_kernel_rejects_bad_entries_like_the_batch_path():
    mm = MemMap(N, "folio-share")
    assert mm._op is not None
    for args, match in [
        ((N, 1, 1, 0, False), "outside"),
        ((-1, 1, 1, 0, False), "outside"),
        ((0, 3, 1, 0, False), "npages"),
        ((5, PMD_NPAGES, 1, 0, False), "multiple"),
        ((0, 1, 0, 0, False), "mapping"),
    ]:
        with pytest.raises(ValueError, match=match):
            mm.associate(*args)
        with pytest.raises(ValueError, match=match):
            mm.disassociate(*args[:3], False)
    assert mm.operations == 0


def test_user_batch_kernel_never_pairs_with_a_builtin_single_op_kernel():
    from sim.memmap import kernels

    class OwnBatch(PageShare):
        name = "own-batch"
        batch_kernel = staticmethod(kernels.cow_index_batch.py_func)

    mm = MemMap(N, OwnBatch)
    assert mm._op is None and not mm._gauged


def test_pmd_folio_over_set_tails_takes_their_gauges_away():
    mm = MemMap(N, "folio-share")
    mm.associate(5, 1, 4, 77, False)
    mm.disassociate(5, 1, 4, False)  # phantom at 5
    mm.associate(7, 1, 1, 3, False)
    mm.associate(7, 1, 2, 3, True)  # Shared(2) at 7
    assert mm.phantom_pages() == 1 and mm.share_histogram().tolist() == [0, 0, 1]
    mm.associate(0, PMD_NPAGES, 9, 0, False)  # prep_compound_page() clears both tails
    assert mm.phantom_pages() == 0 and mm.share_degree_max() == 0
    assert mm.page(5) == (0, 0) and mm.page(7) == (0, 0)
    mm.associate(0, PMD_NPAGES, 8, 0, True)  # Shared(2) order-9 folio: 512 pages at degree 2
    assert mm.share_histogram().tolist() == [0, 0, PMD_NPAGES]
    mm.disassociate(3, 1, 9, False)  # a PTE put inside the folio acts on the head
    assert mm.share_histogram().tolist() == [0, PMD_NPAGES]  # Shared(1): 512 pages
    mm.disassociate(0, PMD_NPAGES, 8, False)  # final put: split, nothing shared
    assert mm.share_histogram().tolist() == [] and mm.folio(3) == (3, 0, 0, 0)
    assert mm.scan_stats()["share_histogram"].tolist() == []
