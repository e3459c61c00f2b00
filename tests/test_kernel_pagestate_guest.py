"""Page state read from real kernels (one boot per kernel) and compared with daxsim's.

Each kernel (6.1: cow-index; 7.3: folio-share with the reset; 6.18: folio-share without it)
runs four scripts in one boot; before each script's unmount the host reads the
struct pages of the emulated pmem (sim.kernel.pagestate.PageCapture). Expectations are what
the kernels' fs/dax.c does (docs: kernel-semantics.md section 1, real-kernels.md section 3),
and agreement with what daxsim computes for the same script under the kernel's design, never
values copied from a run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import InputError
from sim.kernel import pagestate as ps
from sim.kernel.cache import load_kernel
from sim.kernel.program import encode
from sim.kernel.run import parse_reports, prepare_scripts

#: The seed's residue (real-kernels.md section 3, up to the removal of both files): f2's page
#: 0 is CoW-written through a mapping after the reflink, then both files go. On 6.1 the CoW
#: block keeps (PAGE_MAPPING_DAX_COW, 0) (dax_disassociate_entry's post-decrement).
RESIDUE = """@mkfs size=32m
open -f f2
pwrite -S 0x61 0 64k
fsync
open -f f1
reflink f2
file 0
mmap -rw 0 64k
mwrite -S 0x62 0 1
munmap
close
close
@unlink f1
@unlink f2
"""

#: Two readers of a shared block (a1 a reflink of a2, both mapped and read), and a plain file.
READERS = """@mkfs size=32m
open -f a2
pwrite -S 0x61 0 16k
fsync
open -f a1
reflink a2
close
close
open a2
mmap -r 0 16k
mread 0 16k
open a1
mmap -r 0 16k
mread 0 16k
munmap
munmap
close
close
open -f d
pwrite -S 0x64 0 8k
fsync
mmap -r 0 8k
mread 0 8k
munmap
close
"""

#: A 2 MiB file in a 2 MiB extent (su=2m, written with -b 2m), read through a 2 MiB mapping:
#: a PMD fault (real-kernels.md section 3).
PMD = """@mkfs size=32m
open -f c
pwrite -S 0x63 -b 2m 0 2m
fsync
mmap -r 0 2m
mread 0 4096
munmap
close
"""

#: Four pages of a file read through a mapping, then three of them punched: each put of an
#: order-0 folio owned at index i > 0 leaves (NULL, i) where the reset is missing (6.15 until
#: dax_folio_reset_order(): kernel-semantics.md section 1d, the stale-index hazard). Last,
#: since what it leaves outlives the filesystem.
PHANTOM = """@mkfs size=32m
open -f p
pwrite -S 0x70 0 16k
fsync
mmap -r 0 16k
mread 0 16k
munmap
fpunch 4k 12k
close
"""

SCRIPTS = {"residue": RESIDUE, "readers": READERS, "pmd": PMD, "phantom": PHANTOM}


def with_start_pause(program: bytes, name: str) -> bytes:
    """``program`` with a pause before its ``@mkfs`` (after the agent's ``setup`` line): the
    page state a script starts from."""
    setup, rest = program.split(b"\n", 1)
    pause = f"0 pause {encode(name + ps.BASELINE_SUFFIX)}".encode()
    return setup + b"\n" + pause + b"\n" + rest


@pytest.fixture(scope="module", params=["6.1", "7.3", "6.18"])
def booted(request, tmp_path_factory):
    """One boot of a kernel with the three scripts, page state read before each unmount."""
    from sim.kernel.fetch import fetch_kernel
    from sim.kernel.guest import GuestScript, run_job

    try:
        kernel = load_kernel(request.param)
    except InputError:
        kernel = fetch_kernel(request.param, log=lambda *_: None)
    d = tmp_path_factory.mktemp("scripts")
    paths = []
    for name, text in SCRIPTS.items():
        paths.append(d / f"{name}.xfsio")
        paths[-1].write_text(text)
    prepared = prepare_scripts(paths, pause=True)
    capture = ps.PageCapture.for_kernel(kernel)
    job = run_job(
        kernel,
        [GuestScript(name, with_start_pause(prog, name)) for _p, name, _c, prog in prepared],
        pause=capture,
    )
    assert not job.timed_out, job.boot_log[-3000:]
    assert capture.errors == {}
    outs = {o.name: o for o in job.scripts}
    got = {}
    for path, name, cmds, _prog in prepared:
        reports = parse_reports(outs[name].agent_stdout)
        assert any(r.get("op") == "umount" for r in reports), outs[name].agent_stdout[-2000:]
        base = capture.pages[name + ps.BASELINE_SUFFIX]
        got[Path(path).stem] = (capture.pages[name], reports, cmds, str(path), base)
    return kernel, job.iomem, got


def _observe(booted, script):
    kernel, iomem, got = booted
    pages, reports, cmds, path, base = got[script]
    start, size = ps.data_area(iomem)
    kv = ps.kernel_view(pages, kernel.design, ps.final_files(reports), start, size, base)
    dax = ps.daxsim_before_unmount(cmds, path, kernel.design)
    return kv, ps.compare_views(kv, ps.daxsim_view(dax))


def test_the_device_struct_pages_are_zone_device_pages(booted):
    _kernel, iomem, got = booted
    pages = got["readers"][0]
    start, size = ps.data_area(iomem)
    data = pages.select(range(start // ps.PAGE_BYTES, (start + size) // ps.PAGE_BYTES))
    # every struct page of the data area is mapped and points at the one dev_pagemap
    assert data.present.all()
    heads = data.pgmap[data.order >= 0]
    assert heads.size == data.pfn.size and (heads == heads[0]).all() and heads[0] < 0


def test_residue_after_cow_and_removal(booted):
    kernel, _iomem, _got = booted
    kv, rows = _observe(booted, "residue")
    # 6.1: N cow-associations then N disassociations leave (COW, 0); later designs clean up
    assert kv.residue_pages == (1 if kernel.design == "cow-index" else 0)
    assert kv.blocks == {}  # both files are gone
    assert [r for r in rows if not r[3]] == []


def test_residue_outlives_the_filesystem(booted):
    """The struct pages outlive mkfs: the next script starts from the residue (6.1)."""
    kernel, iomem, got = booted
    start, size = ps.data_area(iomem)
    base = got["readers"][4]  # the readers script runs after the residue script
    blank = ps.kernel_view(base, kernel.design, {}, start, size)
    assert blank.residue_pages == (1 if kernel.design == "cow-index" else 0)


def test_two_readers_of_a_shared_block(booted):
    kernel, _iomem, _got = booted
    kv, rows = _observe(booted, "readers")
    a1 = {kv.blocks[("a1", o)] for o in range(4)}
    if kernel.design == "cow-index":
        # reads associate with cow=false: the second reader overwrites the first owner
        assert a1 == {("a1", o, 0) for o in range(4)}
    else:
        # folio-share: the second mapper of a shared block makes it Shared(2)
        assert a1 == {("NULL", 2, 0)}
    assert {kv.blocks[("d", o)] for o in range(2)} == {("d", 0, 0), ("d", 1, 0)}
    assert [r for r in rows if not r[3]] == []


def test_pmd_fault_folio(booted):
    kernel, _iomem, _got = booted
    kv, _rows = _observe(booted, "pmd")
    c = [kv.blocks[("c", o)] for o in range(512)]
    if kernel.design.startswith("folio-share"):
        # dax_folio_init: a PMD entry's 512 pages are one order-9 folio, state in the head
        assert set(c) == {("c", 0, 9)}
    else:
        # 6.1: the PMD entry's 512 pages are associated one by one
        assert c == [("c", o, 0) for o in range(512)]


def test_stale_index_phantoms_without_the_reset(booted):
    kernel, _iomem, _got = booted
    kv, rows = _observe(booted, "phantom")
    # pages 1..3 were owned at indexes 1..3 when punched: phantoms only without the reset
    assert kv.phantom_pages == (3 if kernel.design == "folio-share" else 0)
    rows = {r[0]: r for r in rows}
    assert rows["phantom_pages"][3] and rows["residue_pages"][3]
