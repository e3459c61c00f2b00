"""XFS breaks a DAX file's layout before reflink, dedupe, fallocate and truncate
(``FaultRules.break_layout``; real-kernels.md §2): every mapping of the file is unmapped
(``xfs_break_dax_layouts`` -> ``dax_layout_busy_page_range`` -> ``unmap_mapping_pages``,
v4.17-v6.14), and from v6.15 the file's DAX entries are deleted too (``dax_break_layout`` ->
``dax_delete_mapping_range``), so mappings re-fault on the next access."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sim.dax import DaxFS
from sim.memmap import VARIANTS
from sim.memmap.fault_rules import RULES_6_2, RULES_6_15
from sim.xfsio.runner import run_script

KERNEL = Path(__file__).resolve().parents[1] / "scenarios" / "scripts" / "kernel"
PAGE = 4096


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_punch_refaults_the_file(variant):
    """refault-punch.xfsio: four PTE reads, a punch of the last page, page 0 read again: five
    dax_pte_fault events on 6.1, 6.12 and 7.3 (without layout breaking page 0 stays mapped)."""
    r = run_script((KERNEL / "refault-punch.xfsio").read_text(), "refault-punch", variant)
    assert r.result.ok, [c.describe() for c in r.result.failed]
    assert r.dax.stats["pte_faults"] == 5
    assert r.dax.stats["pmd_faults"] == 0


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_reflink_refaults_the_source(variant):
    """refault-reflink.xfsio: a PMD-mapped 2 MiB file read, reflinked into a new file, read
    again through the same mapping: two dax_pmd_fault events on 6.1, 6.12 and 7.3."""
    r = run_script((KERNEL / "refault-reflink.xfsio").read_text(), "refault-reflink", variant)
    assert r.result.ok, [c.describe() for c in r.result.failed]
    assert r.dax.stats["pmd_faults"] == 2


def _mapped_then(rules, op):
    """A 16-page file read through a PTE mapping, then ``op``: (entries before, entries
    after, mapped pages after, struct page of block 0 after)."""
    dfs = DaxFS(1 << 12, "page-share", generation=rules)
    ino = dfs.fs.open("a", create=True)
    dfs.pwrite(ino, 0, 16 * PAGE, 0x61)
    vid = dfs.mmap(1, ino, 0, 16 * PAGE, huge=False)
    dfs.mread(vid, 0, 16 * PAGE)
    before = len(dfs.xarray(ino).entries)
    op(dfs, ino)
    vma = dfs.vmas[vid]
    pfn0 = dfs.fs.iomap(ino, 0, 1)[1]
    return before, len(dfs.xarray(ino).entries), len(vma.ptes) + len(vma.pmds), dfs.mm.page(pfn0)


def _same_bytes(dfs):
    b = dfs.fs.open("b", create=True)
    dfs.pwrite(b, 0, PAGE, 0x61)
    return b


OPS = {
    "truncate": lambda d, i: d.truncate(i, 32 * PAGE),
    "fallocate": lambda d, i: d.fallocate(i, 16 * PAGE, PAGE),
    "zero": lambda d, i: d.zero_range(i, 16 * PAGE, PAGE),
    "unshare": lambda d, i: d.unshare(i, 0, PAGE),
    "clone-src": lambda d, i: d.clone(d.fs.open("b", create=True), i),
    "dedupe-src": lambda d, i: d.dedupe(_same_bytes(d), i, 0, 0, PAGE),
}


@pytest.mark.parametrize("name", list(OPS))
def test_break_layout_rule(name):
    """Each op that breaks the layout unmaps the whole file under "unmap" (entries stay), also
    deletes the entries under "unmap_delete" (the pages are disassociated), and does neither
    under "none"."""
    op = OPS[name]
    n0, n1, mapped, page = _mapped_then(RULES_6_2, op)
    assert n0 == 16 and n1 == 16 and mapped == 0 and page[0] >= 1
    n0, n1, mapped, page = _mapped_then(RULES_6_15, op)
    assert n0 == 16 and n1 == 0 and mapped == 0 and page == (0, 0)
    none = dataclasses.replace(RULES_6_2, generation="x", break_layout="none")
    n0, n1, mapped, page = _mapped_then(none, op)
    assert n1 == 16 and mapped > 0 and page[0] >= 1


def test_write_does_not_break_the_layout():
    """write(2) takes xfs_break_layouts(BREAK_WRITE), which breaks no DAX layout."""
    n0, n1, mapped, page = _mapped_then(RULES_6_15, lambda d, i: d.pwrite(i, 15 * PAGE, 10, 0x62))
    assert n1 == n0 == 16 and mapped == 16


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_punched_pmd_falls_back_once(variant):
    """pmd-punch-fallback.xfsio: a PMD-mapped 2 MiB file, a block in its middle punched, page
    0 and the last page read: one PMD fault, one fallback, two PTE faults on 6.1, 6.12, 6.18 and
    7.3 (after the fallback the region has a PTE table, so the last page's fault tries no
    huge fault)."""
    text = (KERNEL / "pmd-punch-fallback.xfsio").read_text()
    r = run_script(text, "pmd-punch-fallback", variant)
    assert r.result.ok, [c.describe() for c in r.result.failed]
    s = r.dax.stats
    assert (s["pmd_faults"], s["pmd_fallbacks"], s["pte_faults"]) == (1, 1, 2)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_pte_table_outlives_the_layout_break(variant):
    """A fault past EOF falls back and makes a PTE table in the 2 MiB region; the file then
    grows to a whole 2 MiB extent and its layout is broken (from v6.15 its entries deleted
    too): the next fault is a PTE fault, because ``__handle_mm_fault`` tries a huge fault only
    while the PMD is none and ``unmap_mapping_pages`` leaves the table."""
    text = "\n".join(
        [
            "@mkfs size=32m",
            "open -f f1",
            "pwrite -S 0x61 -b 1m 0 1m",
            "mmap -r 0 2m",
            "mread 0 1",
            "pwrite -S 0x61 -b 1m 1m 1m",
            "falloc -k 4m 4k",
            "mread 4096 1",
            "munmap",
            "close",
        ]
    )
    r = run_script(text, "pte-table", variant)
    assert r.result.ok, [c.describe() for c in r.result.failed]
    s = r.dax.stats
    assert (s["pmd_faults"], s["pmd_fallbacks"], s["pte_faults"]) == (0, 1, 2)
