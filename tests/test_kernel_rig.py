"""The real-kernel rig on Linux 6.1 and 7.3 (one boot each for the whole suite, through the
``kernel_run`` fixture): what the rig reports must be what these kernels are known to do
(../shared/docs/real-kernels.md)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from kernel_suite import RIG_SCRIPTS, SCRIPTS, ensure_kernel

from sim.errors import InputError
from sim.kernel.cache import describe_kernel, local_kernel
from sim.kernel.guest import GuestScript, boot_image, run_job


def result(run, name: str):
    return run.by_path[str(SCRIPTS / name)]


@pytest.fixture(scope="module")
def k61(kernel_run):
    return kernel_run("6.1")


@pytest.fixture(scope="module")
def k73(kernel_run):
    return kernel_run("7.3")


def test_designs_are_derived_from_the_kernels(k61, k73):
    assert (k61.kernel.version.split(".")[:2], k61.kernel.design) == (["6", "1"], "cow-index")
    assert (k73.kernel.version.split(".")[:2], k73.kernel.design) == (
        ["7", "3"],
        "folio-share-reset",
    )


@pytest.mark.parametrize("series", ["6.1", "7.3"])
def test_every_rig_script_runs_to_its_end_with_its_checks_holding(kernel_run, series):
    run = kernel_run(series)
    assert not run.timed_out
    for s in (run.by_path[str(p)] for p in RIG_SCRIPTS):
        assert s.error is None, (s.script, s.error)
        assert s.counts()["checks_failed"] == 0, (s.script, s.to_json()["failed"])


def test_two_readers_warn_on_61_at_associate_and_disassociate(k61):
    assert result(k61, "two-readers.xfsio").warnings == [
        {"file": "fs/dax.c", "line": 380, "function": "dax_associate_entry",
         "site": "associate_mapping_set"},
        {"file": "fs/dax.c", "line": 404, "function": "dax_disassociate_entry",
         "site": "disassociate_foreign_mapping"},
    ]  # fmt: skip


def test_warn_on_once_is_rearmed_between_scripts_of_one_boot(k61):
    # Both scripts hit fs/dax.c:380 in the same boot: WARN_ON_ONCE fired again.
    for name in ("two-readers.xfsio", "folio-order.xfsio"):
        assert 380 in [w["line"] for w in result(k61, name).warnings], name


def test_residue_of_the_seed_is_visible_on_61(k61):
    # The freed CoW block's struct page keeps PAGE_MAPPING_DAX_COW; a new file's fault warns.
    warnings = result(k61, "residue-visible.xfsio").warnings
    assert {"file": "fs/dax.c", "line": 380, "function": "dax_associate_entry",
            "site": "associate_mapping_set"} in warnings  # fmt: skip


def test_two_readers_share_the_page_silently_on_73(k73):
    assert result(k73, "two-readers.xfsio").warnings == []


def test_folio_order_warn_on_73(k73):
    assert result(k73, "folio-order.xfsio").warnings == [
        {"file": "fs/dax.c", "line": 495, "function": "dax_associate_entry",
         "site": "associate_order_mismatch"},
    ]  # fmt: skip


@pytest.mark.parametrize("series", ["6.1", "7.3"])
def test_refaults_after_punch_and_after_reflink(kernel_run, series):
    run = kernel_run(series)
    # Four page reads, the punch zaps every PTE of the file, page 0 faults again.
    assert result(run, "refault-punch.xfsio").faults["pte"] == 5
    # The reflink breaks both files' layouts: the PMD is faulted in a second time.
    faults = result(run, "refault-reflink.xfsio").faults
    assert (faults["pmd"], faults["pte"]) == (2, 0)


def test_a_kernel_given_by_hand_is_described_like_the_fetched_one():
    k = ensure_kernel("6.1")
    own = local_kernel(k.vmlinuz, k.modules)
    assert (own.name, own.release, own.version, own.design) == (
        "local",
        k.release,
        k.version,
        k.design,
    )
    # Read from the image itself: 6.1's BTF has no share member in struct page or folio, and
    # 7.3 exports dax_folio_reset_order.
    assert "no share member" in describe_kernel(k.vmlinuz, None)[3]
    k73 = ensure_kernel("7.3")
    assert describe_kernel(k73.vmlinuz, None)[2:] == (
        "folio-share-reset",
        "symbol dax_folio_reset_order",
    )
    with pytest.raises(InputError, match="no such kernel image"):
        local_kernel(k.vmlinuz.parent / "missing", k.modules)


def test_a_hung_guest_is_killed_and_reported():
    # Booted as a kernel given by hand as a build tree's vmlinux (--vmlinuz/--modules): its
    # own base image, booted by its PVH entry.
    fetched = ensure_kernel("6.1")
    k = local_kernel(boot_image(fetched), fetched.modules)
    assert k.vmlinuz.read_bytes()[:4] == b"\x7fELF"
    assert boot_image(k) == k.vmlinuz
    # The first script takes the pmem's namespace away, so the guest cannot give the second
    # fresh struct pages (it binds nd_pmem to the pfn device again before each script).
    gone = b"ndctl disable-namespace namespace0.0 && ndctl destroy-namespace -f namespace0.0\n"
    scripts = [
        GuestScript("first", b"#!/bin/sh\necho before the hang\n" + gone),
        GuestScript("second", b"#!/bin/sh\necho no pmem\n"),
        GuestScript("hang", b"#!/bin/sh\nsleep 100000\n"),
    ]
    job = run_job(k, scripts, timeout_s=600, script_timeout_s=5)
    assert job.timed_out and not job.complete
    # What finished before the hang is kept; the hung script is not reported.
    assert [(s.name, s.agent_stdout, s.exit_status) for s in job.scripts] == [
        ("first", "before the hang\n", 0),
        ("second", "no pmem\n", 0),
    ]
    first, second = job.scripts
    assert first.reset_s is None and first.reset_error is None
    assert second.reset_s is not None and second.reset_error
    assert "System RAM" in job.iomem
    assert job.release == fetched.release
    assert not Path(job.workdir).exists()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        assert job.workdir.encode() not in cmdline, f"process {pid} still runs the guest"


def test_kernel_list_shows_the_cached_kernels(capsys):
    from sim.cli import main

    k = ensure_kernel("6.1")
    assert main(["kernel", "list"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("6.1 "))
    assert re.split(r"\s{2,}", row)[:4] == ["6.1", k.release, k.version, "cow-index"]


def test_a_boot_keeps_the_guest_symbols_as_the_system_map(k61):
    # Debian ships a placeholder System.map; the rig keeps the guest's /proc/kallsyms.
    k = ensure_kernel("6.1")
    assert k.system_map is not None
    addrs = {}
    for line in k.system_map.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] in ("vmemmap_base", "dax_insert_entry"):
            addrs[parts[2]] = int(parts[0], 16)
    assert set(addrs) == {"vmemmap_base", "dax_insert_entry"}
    assert all(a >= 0xFFFFFFFF80000000 for a in addrs.values())  # nokaslr kernel text/data
