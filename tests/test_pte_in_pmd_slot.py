"""A PTE fault that replaces a multi-index (PMD) entry stores its order-0 entry in the PMD's
slot (``dax_insert_entry`` locks it with the PTE fault's order-0 ``xa_state``): the entry
covers the 512 indices, the next PTE fault in the range replaces it (its page's share drops
while a PTE still maps the page), and its removal leaves 511 pages in ``nrpages``, which
``clear_inode()``'s ``BUG_ON(inode->i_data.nrpages)`` catches at the eviction (Linux 6.12,
6.18 and 7.3 on ``scenarios/scripts/kernel/pte-in-pmd-slot.xfsio``, Linux 6.1 on its stores:
share 1, a BUG at fs/inode.c, and the unmount never returns; the rig records the BUG and
kills the guest)."""

from __future__ import annotations

import pytest

from sim.dax.xarray_dax import DAX_PMD, DAX_SHIFT, DaxXArray
from sim.fs import FsError
from sim.kernel.splat import KNOWN_SITES, site_of_line
from tests.test_pmd_folio_order import _pte_then_pmd

NB = 1 << 13
PAGE = 4096
PMD = 512


def _pte_faults_under_f2s_pmd_entry(design: str):
    """f2 holds a 2 MiB extent, f1 its reflink; f1 reads page 0 (4 KiB mapping), f2 reads
    through a 2 MiB mapping (a PMD entry: refused from 6.15 on a folio design, mapped
    before), unmaps it, then reads pages 0 and 1 through an 8 KiB mapping (PTE faults)."""
    d, _f1, f2, v2, pfn = _pte_then_pmd(design)
    try:
        d.mread(v2, 0, 1)
    except FsError as exc:
        assert exc.errno == "SIGBUS" and design.startswith("folio")
    assert d.spaces[f2].xa.entries == {0: (pfn << DAX_SHIFT) | DAX_PMD}
    d.munmap(v2)
    v3 = d.mmap(1, f2, 0, 2 * PAGE)
    d.mread(v3, 0, 1)
    return d, f2, v3, pfn


def _share(d, pfn: int) -> int:
    """The share count of a shared page (``mapping`` NULL, or page-share's flag)."""
    m, share = d.mm.page(pfn)
    assert m in (0, -1), m
    return share


@pytest.mark.parametrize("design", ["page-share", "folio-share", "folio-share-reset"])
def test_a_pte_fault_stores_its_entry_in_the_pmd_slot(design):
    d, f2, v3, pfn = _pte_faults_under_f2s_pmd_entry(design)
    xa = d.spaces[f2].xa
    # the PTE entry of page 0 sits at the PMD's canonical slot and covers the 512 indices
    assert xa.entries == {0: pfn << DAX_SHIFT} and xa.wide == {0: 0}
    assert xa.lookup(300) == (0, pfn << DAX_SHIFT)
    assert xa.nrpages == PMD  # grab_mapping_entry's 512, untouched by dax_insert_entry
    assert _share(d, pfn) == 2  # f1's entry and f2's
    d.mread(v3, PAGE, 1)
    # the fault at page 1 found page 0's entry, put it (share 2 -> 1) and stored its own
    assert xa.entries == {0: (pfn + 1) << DAX_SHIFT} and xa.wide == {0: 1}
    assert _share(d, pfn) == 1
    assert d.vmas[v3].ptes[0][0] == pfn  # while f2 still maps page 0


@pytest.mark.parametrize("design", ["page-share", "folio-share", "folio-share-reset"])
def test_the_eviction_finds_511_pages_counted(design):
    d, f2, v3, _pfn = _pte_faults_under_f2s_pmd_entry(design)
    d.mread(v3, PAGE, 1)
    assert d.mm.warnings.get("clear_inode_nrpages", 0) == 0
    d.unmount()
    assert d.mm.warnings["clear_inode_nrpages"] == 1  # f2's; f1's mapping is clean


def test_removing_an_entry_from_a_slot_takes_one_page_away():
    xa = DaxXArray(1)
    xa.store(512, (7 << DAX_SHIFT) | DAX_PMD)
    xa.store_in_slot(700, 700, 9 << DAX_SHIFT)
    assert xa.lookup(1000) == (512, 9 << DAX_SHIFT) and xa.lookup(1024) is None
    assert xa.range_indices(600, 800) == [512] and xa.max_index() == 1023
    assert xa.arrays()["index"].tolist() == [700]
    xa.store_in_slot(512, 513, 10 << DAX_SHIFT)  # the next PTE fault in the range
    assert xa.entries == {512: 10 << DAX_SHIFT} and xa.wide == {512: 513}
    assert xa.nrpages == PMD
    xa.erase(512)
    assert (len(xa), xa.wide, xa.nrpages, xa.pte_per_pmd) == (0, {}, PMD - 1, {})


def test_the_bug_lines_map_to_the_site():
    assert site_of_line("\tBUG_ON(inode->i_data.nrpages);") == "clear_inode_nrpages"
    for key in (
        ("6.1.192", "fs/inode.c", 657),
        ("6.12.118", "fs/inode.c", 673),
        ("6.18.15", "fs/inode.c", 753),
        ("7.3.4", "fs/inode.c", 776),
    ):
        assert KNOWN_SITES[key] == "clear_inode_nrpages"


M2 = PMD * PAGE
#: The unresolved script's sequence as hunt ops: f1 reflinks f2's 2 MiB extent and reads its
#: first page, f2 reads through a 2 MiB mapping (a PMD entry), unmaps it, and two PTE faults
#: under that entry follow; then both files go.
_SLOT_OPS = (
    ("pwrite", "f2", (0, M2, 0x61)),
    ("clone", "f1", (0, 0, 0), "f2"),
    ("mread", "f1", (0, PAGE, 0, 1)),
    ("mread", "f2", (0, M2, 0, 1)),
    ("munmap", "f2", (0, M2)),
    ("mread", "f2", (0, 2 * PAGE, 0, 1)),
    ("mread", "f2", (0, 2 * PAGE, PAGE, 1)),
    ("unlink", "f2"),
    ("unlink", "f1"),
)


@pytest.mark.parametrize("design", ["page-share", "folio-share", "folio-share-reset"])
def test_the_entry_hook_names_a_slot_entry_by_its_own_page(design):
    """``DaxFS.entry_hook`` reports an order-0 entry in a PMD entry's slot at the file page it
    is associated at (what :meth:`DaxXArray.arrays` reports), so the hunt's incremental
    coverage stays the one rebuilt from every xarray after each op."""
    from sim.hunt import Op, Session
    from tests.test_hunt_incremental import _coverage_matches

    s = Session(design, nblocks=2048)
    seen: list = []
    chained = s.dax.entry_hook
    s.dax.entry_hook = lambda *a: (seen.append(a), chained(*a))
    for t in _SLOT_OPS:
        assert s.apply(Op(*t))
        _coverage_matches(s.tracker)
    stores = [(idx, new >> DAX_SHIFT) for _m, idx, old, new in seen if old is None and new]
    pmd = [v for _m, _i, _o, v in seen if v is not None and v & DAX_PMD]
    assert pmd, "f2's PMD entry was stored"
    pfn = pmd[0] >> DAX_SHIFT
    # page 1's entry sits in slot 0 but is reported at page 1, as arrays() reports it
    assert (1, pfn + 1) in stores and (0, pfn + 1) not in stores
    assert s.tracker.nentries == 0 and not s.tracker.K.any()


@pytest.mark.parametrize("design", ["page-share", "folio-share-reset"])
def test_the_incremental_check_sees_the_bug_as_the_full_check_does(design):
    """The BUG is a site the fsdax layer counts whatever the design lists, so the per-op
    ``no_warnings`` check (``MemMap.warning_total``) sees it at the eviction, the op at which
    the paranoid check first reports it."""
    from sim.hunt import Op, Session

    first = {}
    for paranoid in (False, True):
        s = Session(design, nblocks=2048, paranoid=paranoid)
        for j, t in enumerate(_SLOT_OPS):
            assert s.apply(Op(*t))
            bug = [
                v
                for v in s.check(["no_warnings"])
                if "kernel BUG: clear_inode_nrpages raw 1" in v.message
            ]
            if bug:
                first[paranoid] = j
                break
    assert first == {False: 7, True: 7}  # f2's unlink evicts it


@pytest.mark.slow
@pytest.mark.parametrize("series", ["6.1", "6.18"])
def test_the_kernel_bugs_at_the_unmount_as_daxsim_says(kernel_run, series):
    """On the kernels (the last script of the suite's boot, tests/kernel_suite.py CRASHES):
    clear_inode's BUG at the unmount, recorded by the rig as the script's observation, and
    every observation daxsim makes of the script (checks, files, warning sites, faults,
    where the script stopped, the page state before the unmount: page 0 read as share 1)
    agrees."""
    from kernel_suite import CRASHES

    from sim.kernel.compare import _page_rows, observations, run_daxsim

    run = kernel_run(series)
    (path,) = (str(p) for p in CRASHES[series])
    i = run.paths.index(path)
    res = run.scripts[i]
    assert res.script == path and not run.timed_out
    assert res.crash is not None and res.crash.startswith("kernel BUG at fs/inode.c:")
    assert res.error == "kernel BUG clear_inode_nrpages at the unmount"
    assert "clear_inode_nrpages" in {w["site"] for w in res.warnings}
    cmds = run.parsed[path]
    sim = run_daxsim(cmds, path, run.kernel.design)
    rows = observations(cmds, res, sim) + _page_rows(run, i, res, cmds)
    assert ("completed", res.error, res.error, True) in rows
    assert any(r[0].startswith("pages ") for r in rows)
    assert [r for r in rows if not r[3]] == []
