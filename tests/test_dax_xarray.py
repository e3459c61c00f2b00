"""The DAX xarray model: entry encoding, tree height and node counts (kernel-semantics §3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.dax.xarray_dax import (
    DAX_EMPTY,
    DAX_LOCKED,
    DAX_PMD,
    DAX_ZERO_PAGE,
    MARK_DIRTY,
    MARK_TOWRITE,
    DaxXArray,
    dax_make_entry,
    dax_to_pfn,
    height_for_index,
    xa_is_value,
    xa_mk_value,
    xa_to_value,
)


@given(st.integers(0, (1 << 58) - 1), st.integers(0, 15))
@settings(max_examples=200, deadline=None)
def test_entry_encoding_round_trip(pfn, flags):
    v = dax_make_entry(pfn, flags)
    assert v == (pfn << 4) | flags
    word = xa_mk_value(v)
    assert xa_is_value(word) and word & 1 == 1
    assert xa_to_value(word) == v
    assert dax_to_pfn(xa_to_value(word)) == pfn
    assert v & 0xF == flags


def test_flag_bits_are_the_kernels():
    assert (DAX_LOCKED, DAX_PMD, DAX_ZERO_PAGE, DAX_EMPTY) == (1, 2, 4, 8)


@pytest.mark.parametrize(
    "index, height, nodes",
    [
        (0, 0, 0),
        (1, 1, 1),
        (63, 1, 1),
        (64, 2, 2),
        (4095, 2, 2),
        (4096, 3, 3),
        (262143, 3, 3),
        (262144, 4, 4),
    ],
)
def test_height_for_a_lone_entry(index, height, nodes):
    xa = DaxXArray(1)
    xa.store(index, dax_make_entry(7))
    assert xa.height() == height == height_for_index(index)
    assert xa.node_count() == nodes
    assert len(xa.walk_keys(index)) == height


def test_pmd_entry_at_index_zero_needs_a_node():
    xa = DaxXArray(1)
    xa.store(0, dax_make_entry(512, DAX_PMD))
    assert xa.node_count() == 1
    assert xa.height() == 1
    assert xa.root_shift() == 6
    assert xa.lookup(0) == (0, dax_make_entry(512, DAX_PMD))
    assert xa.lookup(511) == (0, dax_make_entry(512, DAX_PMD))
    assert xa.lookup(512) is None
    assert xa.nrpages == 512
    # an order-0 entry at index 0 alone lives in xa_head
    xb = DaxXArray(1)
    xb.store(0, dax_make_entry(3))
    assert xb.node_count() == 0 and xb.height() == 0


def test_mixed_tree_and_shrink():
    xa = DaxXArray(1)
    xa.store(0, dax_make_entry(512, DAX_PMD))
    xa.store(4096, dax_make_entry(3))
    # root shift 12; PMD leaf (shift 6, prefix 0); path to 4096: (6, 1) and (0, 64)
    assert xa.root_shift() == 12
    assert xa.node_count() == 4
    assert xa.height() == 3
    xa.erase(4096)
    assert xa.root_shift() == 6 and xa.node_count() == 1
    xa.store(5, dax_make_entry(9))
    xa.erase(0)
    assert xa.node_count() == 1 and xa.height() == 1  # index 5 stays in a shift-0 node
    xa.erase(5)
    assert xa.node_count() == 0 and len(xa) == 0 and xa.nrpages == 0


def test_many_entries_node_count():
    xa = DaxXArray(1)
    for i in range(200):
        xa.store(i, dax_make_entry(1000 + i))
    # leaves: ceil(200/64) = 4 shift-0 nodes + one shift-6 root
    assert xa.node_count() == 5 and xa.height() == 2
    assert xa.range_indices(60, 70) == list(range(60, 71))
    d = xa.arrays()
    assert d["pfn"].dtype.kind == "i" and int(d["pfn"][10]) == 1010


def test_marks_and_pmd_conflict_bookkeeping():
    xa = DaxXArray(1)
    xa.store(513, dax_make_entry(5))
    assert xa.pte_per_pmd == {1: 1}
    xa.set_mark(513, MARK_DIRTY)
    xa.set_mark(513, MARK_TOWRITE)
    assert xa.get_mark(513) == MARK_DIRTY | MARK_TOWRITE
    xa.clear_mark(513, MARK_DIRTY)
    assert xa.get_mark(513) == MARK_TOWRITE
    xa.erase(513)
    assert xa.pte_per_pmd == {} and xa.get_mark(513) == 0
