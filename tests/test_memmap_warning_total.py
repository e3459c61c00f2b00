"""``MemMap.warning_total()`` equals ``sum(MemMap.warnings.values())`` after every operation of
random associate/disassociate sequences (which fire warnings), for every built-in design, for
the user design of ``scenarios/designs`` (no batch kernel: the per-page reference) and for a
user design that repeats and adds warning sites; ``folio_orders`` is a read-only view of the
folio orders."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.memmap import MemMap
from sim.memmap.variants import VARIANTS, FolioShare

DESIGN = Path(__file__).resolve().parents[1] / "scenarios" / "designs" / "folio_share_reset_ext.py"


def _user_design():
    spec = importlib.util.spec_from_file_location("_folio_share_reset_ext", DESIGN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.FolioShareResetExt()


class _RepeatedSites(FolioShare):
    """A user design (the folio-share kernels) that lists each of its extra sites twice."""

    name = "repeated-sites"
    extra_sites = FolioShare.extra_sites * 2


def _designs():
    return [*VARIANTS.values(), _user_design(), _RepeatedSites()]


one = st.tuples(
    st.booleans(),
    st.sampled_from([0, 1, 2, 3, 512]),
    st.integers(1, 3),
    st.integers(0, 5),
    st.booleans(),
)


@pytest.mark.parametrize("design", _designs(), ids=lambda v: v.name)
@given(ops=st.lists(one, min_size=1, max_size=40))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_warning_total_equals_sum_of_warnings(design, ops):
    mm = MemMap(2048, design)
    assert mm.warning_total() == 0
    for assoc, pfn, mapping, index, flag in ops:
        npages = 512 if pfn == 512 else 1
        if assoc:
            mm.associate(pfn, npages, mapping, index * npages, flag)
        else:
            mm.disassociate(pfn, npages, mapping, flag)
        total = mm.warning_total()
        assert isinstance(total, int)
        assert total == sum(mm.warnings.values())


def test_warning_total_counts_fired_warnings():
    mm = MemMap(64, "single-owner")
    mm.associate(3, 1, 1, 0, False)
    mm.associate(3, 1, 2, 5, False)  # a second owner: the single-owner design warns
    assert mm.warning_total() == sum(mm.warnings.values()) > 0


def test_warning_total_counts_each_site_once():
    mm = MemMap(2048, _RepeatedSites())
    mm.associate(512, 512, 1, 0, False)
    mm.associate(512, 1, 2, 3, False)  # order-0 associates inside an order-9 folio
    mm.associate(513, 1, 2, 3, True)
    w = mm.warnings
    assert w["associate_order_mismatch"] + w["folio_init_order"] > 0
    assert mm.warning_total() == sum(mm.warnings.values())


def test_folio_orders_is_a_read_only_view():
    mm = MemMap(4096, "folio-share")
    mm.associate(512, 512, 1, 0, False)
    o = mm.folio_orders
    assert o.dtype == np.int8 and o.shape == (8,)
    assert o[1] == 9 and int(o.sum()) == 9
    with pytest.raises(ValueError):
        o[0] = 9
    mm.disassociate(512, 512, 1, True)
    assert int(o.sum()) == 0  # a view: follows the memmap


@pytest.mark.parametrize("design", _designs(), ids=lambda v: v.name)
def test_warning_total_counts_the_fsdax_layers_sites_for_every_design(design):
    """The sites the fsdax layer counts (``count_warning``) are in the total whichever sites
    the design lists: the hunt's per-op check reads the total, the full check the dict."""
    mm = MemMap(2048, design)
    for n, site in enumerate(("folio_put_refcount", "pmd_folio_order", "clear_inode_nrpages"), 1):
        mm.count_warning(site)
        assert mm.warning_total() == n == sum(mm.warnings.values())
        assert mm.warnings[site] == 1
