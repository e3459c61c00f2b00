"""Page state read from real kernels and compared with daxsim's.

The suite's one boot per kernel (tests/kernel_suite.py, fixture ``kernel_run``) reads the
struct pages of the emulated pmem before each script's ``@mkfs`` and before its unmount
(sim.kernel.pagestate.PageCapture). Kernels: 6.1 (cow-index), 7.3 (folio-share with
dax_folio_reset_order) and 6.18 (folio-share without it). Expectations are what the kernels'
fs/dax.c does (docs: kernel-semantics.md section 1, real-kernels.md section 3), and agreement
with what daxsim computes for the same script under the kernel's design, never values copied
from a run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kernel_suite import SCRIPTS

from sim.kernel import pagestate as ps
from sim.kernel.compare import compare_rows
from sim.kernel.run import guest_name
from sim.xfsio.parse import parse_script


@pytest.fixture(scope="module", params=["6.1", "7.3", "6.18"])
def booted(request, kernel_run):
    """The kernel's suite run and its page captures (no capture failed)."""
    run = kernel_run(request.param)
    assert not run.timed_out, run.boot_log[-3000:]
    assert run.capture.errors == {}
    return request.param, run


def observe(booted, script: str):
    """``(kernel view, compare rows)`` of one script of the suite (a file of SCRIPTS)."""
    _series, run = booted
    path = str(SCRIPTS / script)
    name = guest_name(run.paths.index(path), path)
    res = run.by_path[path]
    pages = run.capture.pages[name]
    base = run.capture.pages[name + ps.BASELINE_SUFFIX]
    start, size = ps.data_area(run.iomem)
    design = run.kernel.design
    kv = ps.kernel_view(pages, design, ps.final_files(res.reports), start, size, base)
    cmds = parse_script(Path(path).read_text(), path)
    dax = ps.daxsim_before_unmount(cmds, path, design)
    return kv, ps.compare_views(kv, ps.daxsim_view(dax))


def test_the_device_struct_pages_are_zone_device_pages(booted):
    _series, run = booted
    pages = next(iter(run.capture.pages.values()))
    start, size = ps.data_area(run.iomem)
    data = pages.select(range(start // ps.PAGE_BYTES, (start + size) // ps.PAGE_BYTES))
    # every struct page of the data area is mapped and points at the one dev_pagemap
    assert data.present.all()
    heads = data.pgmap[data.order >= 0]
    assert heads.size == data.pfn.size and (heads == heads[0]).all() and heads[0] < 0


def test_residue_after_cow_and_removal(booted):
    _series, run = booted
    kv, rows = observe(booted, "pagestate-residue.xfsio")
    # 6.1: N cow-associations then N disassociations leave (COW, 0); later designs clean up
    assert kv.residue_pages == (1 if run.kernel.design == "cow-index" else 0)
    assert kv.blocks == {}  # both files are gone
    assert [r for r in rows if not r[3]] == []


def test_every_script_starts_from_fresh_struct_pages(booted):
    """The guest re-initialises the pmem's struct pages between scripts (disable and enable
    of the namespace: memmap_init_zone_device), so no script starts with what an earlier one
    left: 6.1's residue and 6.18's phantoms end their scripts, and the next script's pages
    read before its @mkfs are all (NULL, 0), order 0."""
    _series, run = booted
    paths = run.paths
    start, size = ps.data_area(run.iomem)
    p0, n = start // ps.PAGE_BYTES, size // ps.PAGE_BYTES

    def untouched(key) -> bool:
        sel = run.capture.pages[key].select(np.arange(p0, p0 + n, dtype=np.int64))
        return not ((sel.mapping != 0) | (sel.index != 0) | (sel.order > 0)).any()

    for i, path in enumerate(paths):
        assert untouched(guest_name(i, path) + ps.BASELINE_SUFFIX), path
    assert all(s.reset_s is not None for s in run.scripts[1:])
    # the scripts that leave a silent state do leave it, and the next script is clean
    design = run.kernel.design
    for script, leaver in (
        ("pagestate-residue", "cow-index"),
        ("pagestate-phantom", "folio-share"),
    ):
        k = paths.index(str(SCRIPTS / f"{script}.xfsio"))
        end = ps.kernel_view(run.capture.pages[guest_name(k, paths[k])], design, {}, start, size)
        left = end.residue_pages if script == "pagestate-residue" else end.phantom_pages
        assert (left > 0) == (design == leaver), (script, left)
        if k + 1 < len(paths):
            assert untouched(guest_name(k + 1, paths[k + 1]) + ps.BASELINE_SUFFIX)


def test_two_readers_of_a_shared_block(booted):
    _series, run = booted
    kv, rows = observe(booted, "two-readers.xfsio")
    # f2 is unlinked and open when the pages are read (its name is gone, its entry is not):
    # the one shared block is f1's block 0
    if run.kernel.design == "cow-index":
        # reads associate with cow=false: the second reader (f1) overwrites the first owner
        assert kv.blocks == {("f1", 0): ("f1", 0, 0)}
    else:
        # folio-share: the second mapper of a shared block makes it Shared(2)
        assert kv.blocks == {("f1", 0): ("NULL", 2, 0)}
    assert [r for r in rows if not r[3]] == []


def test_pmd_fault_folio(booted):
    _series, run = booted
    kv, _rows = observe(booted, "pagestate-pmd.xfsio")
    c = [kv.blocks[("c", o)] for o in range(512)]
    if run.kernel.design.startswith("folio-share"):
        # dax_folio_init: a PMD entry's 512 pages are one order-9 folio, state in the head
        assert set(c) == {("c", 0, 9)}
    else:
        # 6.1: the PMD entry's 512 pages are associated one by one
        assert c == [("c", o, 0) for o in range(512)]


def test_stale_index_phantoms_without_the_reset(booted):
    _series, run = booted
    kv, rows = observe(booted, "pagestate-phantom.xfsio")
    # pages 1..3 were owned at indexes 1..3 when punched: phantoms only without the reset
    assert kv.phantom_pages == (3 if run.kernel.design == "folio-share" else 0)
    rows = {r[0]: r for r in rows}
    assert rows["phantom_pages"][3] and rows["residue_pages"][3]


def test_compare_rows_carry_the_page_state(booted):
    """``kernel compare``'s rows of a run whose struct pages were read."""
    _series, run = booted
    kv, rows = observe(booted, "pagestate-residue.xfsio")
    path = str(SCRIPTS / "pagestate-residue.xfsio")
    got = {
        r["observation"]: (r["kernel_value"], r["daxsim_value"], r["agree"])
        for r in compare_rows([run], run.parsed)
        if r["script"] == path
    }
    assert got["residue_pages"] == (str(kv.residue_pages), str(kv.residue_pages), True)
    assert {o: v for o, v in got.items() if o in dict((r[0], r) for r in rows)} == {
        r[0]: (r[1], r[2], r[3]) for r in rows
    }
