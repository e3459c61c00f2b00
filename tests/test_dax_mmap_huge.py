"""mmap placement decides PMD versus PTE faults (dax_fault_check_fallback's colour check)."""

from __future__ import annotations

import pytest

from sim.dax import DaxFS

MiB = 1 << 20


@pytest.mark.parametrize("huge, pmd_faults, pte_faults", [(True, 1, 0), (False, 0, 512)])
def test_colour_aligned_mapping_takes_pmd_faults_and_off_colour_falls_back(
    huge, pmd_faults, pte_faults
):
    d = DaxFS(4096, "page-share")
    ino, _ = d.open("f", create=True)
    d.pwrite(ino, 0, 2 * MiB, 0x61)
    vid = d.mmap(1, ino, 0, 2 * MiB, writable=True, huge=huge)
    d.mread(vid, 0, 2 * MiB)
    assert d.stats["pmd_faults"] == pmd_faults
    assert d.stats["pte_faults"] == pte_faults
    e = d.entries()
    assert int(e["npages"].sum()) == 512
