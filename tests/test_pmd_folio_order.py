"""``vmf_insert_folio_pmd()`` refuses a folio not of order 9 (``FaultRules.pmd_folio_order``,
v6.15+): a PMD fault over a shared extent whose first page is an order-0 folio WARNs twice and
gets SIGBUS, with the PMD entry left stored and associated (Linux 6.18 and 7.3 on
``scenarios/scripts/kernel/pmd-then-pte-shared.xfsio`` and ``pmd-sigbus-*.xfsio``)."""

from __future__ import annotations

import dataclasses

import pytest

from sim.dax import DaxFS
from sim.dax.xarray_dax import DAX_PMD, DAX_SHIFT
from sim.fs import FsError
from sim.memmap.fault_rules import RULES_6_2, RULES_6_15
from sim.memmap.layout import SITES
from sim.xfsio.runner import run_script

NB = 1 << 13
PAGE = 4096
PMD = 512


def _pte_then_pmd(design: str, rules=None):
    """f2 holds a 2 MiB extent (the first of the device: 2 MiB aligned), f1 is its reflink;
    f1 reads its first page through a 4 KiB mapping (an order-0 folio owned by f1), then f2
    is mapped 2 MiB. Returns (dfs, f1, f2, the f2 mapping, the extent's first pfn)."""
    d = DaxFS(NB, design, generation=rules)
    f2 = d.fs.open("f2", create=True)
    d.pwrite(f2, 0, PMD * PAGE, 0x61)
    f1 = d.fs.open("f1", create=True)
    d.clone(f1, f2)
    v1 = d.mmap(1, f1, 0, PAGE)
    d.mread(v1, 0, 1)
    v2 = d.mmap(1, f2, 0, PMD * PAGE)
    pfn = d.fs.iomap(f2, 0, PMD)[1]
    assert pfn % PMD == 0
    return d, f1, f2, v2, pfn


@pytest.mark.parametrize("design", ["folio-share", "folio-share-reset"])
def test_a_pmd_over_an_order0_shared_folio_is_refused_with_sigbus(design):
    d, _f1, f2, v2, pfn = _pte_then_pmd(design)
    with pytest.raises(FsError) as exc:
        d.mread(v2, PAGE, 1)
    assert exc.value.errno == "SIGBUS"
    w = d.mm.warnings
    assert (w["associate_order_mismatch"], w["pmd_folio_order"]) == (1, 1)
    # dax_insert_entry ran before the refusal: the PMD entry is stored and associated (the
    # order-0 folio made shared by the second owner: share 2), its order unchanged; no PMD
    assert d.spaces[f2].xa.entries == {0: (pfn << DAX_SHIFT) | DAX_PMD}
    assert d.mm.folio(pfn)[1:] == (0, 0, 2)
    assert d.vmas[v2].pmds == {} and d.vmas[v2].ptes == {}
    assert (d.stats["pmd_faults"], d.stats["pmd_sigbus"], d.stats["pte_faults"]) == (0, 1, 1)
    # no fallback, no retry: every later PMD fault there is refused again
    with pytest.raises(FsError, match="vmf_insert_folio_pmd"):
        d.mread(v2, 2 * PAGE, 1)
    assert d.mm.warnings["pmd_folio_order"] == 2
    assert d.mm.folio(pfn)[1:] == (0, 0, 2)  # the replaced entry's put, the new one's get


def test_the_entry_outlives_the_sharing_and_keeps_refusing():
    """Once f1 is gone the extent is f2's alone: dax_insert_entry keeps the PMD entry (no
    replace), and vmf_insert_folio_pmd still finds the order-0 folio (pmd-sigbus-after)."""
    d, f1, f2, v2, pfn = _pte_then_pmd("folio-share")
    with pytest.raises(FsError):
        d.mread(v2, 0, 1)
    for vid in [v for v, m in d.vmas.items() if m.ino == f1]:
        d.munmap(vid)
    d.unlink("f1")
    assert d.mm.folio(pfn)[1:] == (0, 0, 1)
    with pytest.raises(FsError, match="SIGBUS"):
        d.mread(v2, 0, 1)
    assert d.mm.warnings["pmd_folio_order"] == 2


@pytest.mark.parametrize(
    "design, rules",
    [
        ("folio-share", dataclasses.replace(RULES_6_15, pmd_folio_order=False)),
        ("folio-share", RULES_6_2),
        ("page-share", RULES_6_15),  # no folios: the PMD maps a pfn (up to v6.14's path)
        ("page-share", None),
    ],
)
def test_without_the_rule_or_folios_the_pmd_is_mapped(design, rules):
    d, _f1, _f2, v2, pfn = _pte_then_pmd(design, rules)
    d.mread(v2, PAGE, 1)
    assert d.vmas[v2].pmds == {0: (pfn, False)}
    assert d.mm.warnings.get("pmd_folio_order", 0) == 0
    assert d.stats["pmd_faults"] == 1


def test_a_write_fault_cows_into_an_unowned_folio_and_maps_it():
    """pmd-sigbus-write: the write PMD fault CoWs the shared extent into new blocks, whose
    folio the first-owner branch makes order 9: mapped, no WARN."""
    d, _f1, f2, v2, pfn = _pte_then_pmd("folio-share")
    d.mwrite(v2, PAGE, 1, 0x62)
    new = d.fs.iomap(f2, 0, PMD)[1]
    assert new != pfn and d.vmas[v2].pmds == {0: (new, True)}
    assert d.mm.folio(new)[1] == 9
    assert sum(d.mm.warnings.values()) == 0


def test_the_failed_access_still_reports_its_work_record():
    """The refused fault's record (its WARNs) reaches the record hook, as every operation's
    does (the hunt's warning check reads the records)."""
    d, _f1, _f2, v2, _pfn = _pte_then_pmd("folio-share")
    seen = []
    d.record_hook = seen.append
    with pytest.raises(FsError):
        d.mread(v2, PAGE, 1)
    assert [(r.op, r.warnings, r.faults) for r in seen] == [("mread", 2, 1)]


def test_the_site_is_a_memmap_site_of_the_folio_designs_only():
    from sim.memmap import VARIANTS

    assert "pmd_folio_order" in SITES
    for name, v in VARIANTS.items():
        assert ("pmd_folio_order" in v.warning_sites) == bool(v.folio), name


def test_phantom_visible_script_gets_three_sigbus_under_folio_share_only():
    """scenarios/scripts/kernel/phantom-visible.xfsio: on 6.18 (folio-share) the stale heads
    make each of three legal PMD reads SIGBUS; with the reset (7.3) they map PMDs."""
    from pathlib import Path

    path = Path(__file__).parent.parent / "scenarios/scripts/kernel/phantom-visible.xfsio"
    r = run_script(path.read_text(), str(path), "folio-share")
    assert r.result.ok, [c.describe() for c in r.result.failed]
    assert r.dax.mm.warnings["pmd_folio_order"] == 3
    r = run_script(path.read_text(), str(path), "folio-share-reset")
    assert [c.kind for c in r.result.failed] == ["expect_errno"] * 3
    assert r.dax.stats["pmd_faults"] == 3 and sum(r.dax.mm.warnings.values()) == 0
