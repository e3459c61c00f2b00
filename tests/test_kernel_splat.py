"""Splats and fault counts from kernel text (the lines below are in the formats Linux 6.1 and
7.3 print; tests/test_kernel_rig.py checks them on booted kernels)."""

from __future__ import annotations

import json
from pathlib import Path

from sim.kernel.cache import KernelInfo
from sim.kernel.splat import (
    enclosing_function,
    fault_counts,
    lost_events,
    parse_splats,
    site_of_line,
)

DMESG_61 = """\
[   12.100000] ------------[ cut here ]------------
[   12.100001] WARNING: CPU: 0 PID: 141 at fs/dax.c:380 dax_insert_entry+0x227/0x320
[   12.100002] Modules linked in: xfs nd_pmem nd_btt libnvdimm
[   12.100003] RIP: 0010:dax_insert_entry+0x227/0x320
[   12.200000] WARNING: CPU: 0 PID: 141 at fs/dax.c:404 dax_disassociate_entry+0x9f/0xd0
"""

DMESG_73 = """\
[   20.000000] ------------[ cut here ]------------
[   20.000001] WARNING: fs/dax.c:495 at dax_insert_entry+0x31b/0x3d0, CPU#0: daxio/140
[   21.000000] kernel BUG at mm/huge_memory.c:2001!
[   21.000001] Oops: invalid opcode: 0000 [#1] SMP NOPTI
[   21.000002] RIP: 0010:zap_huge_pmd+0x1c2/0x1d0
"""

DAX_C = """\
static void dax_associate_entry(void *entry, struct address_space *mapping,
		struct vm_area_struct *vma, unsigned long address, bool cow)
{
	unsigned long size = dax_entry_size(entry), pfn, index;
	int i = 0;

	for_each_mapped_pfn(entry, pfn) {
		struct page *page = pfn_to_page(pfn);

		if (cow) {
			dax_mapping_set_cow(page);
		} else {
			WARN_ON_ONCE(page->mapping);
			page->mapping = mapping;
		}
	}
}

/* a comment between functions */
static inline bool dax_is_locked(void *entry)
{
	return xa_to_value(entry) & DAX_LOCKED;
}
"""


def kernel_at(tmp_path: Path, version: str, sources: dict[str, str] | None) -> KernelInfo:
    root = tmp_path / "cache"
    kdir = root / "kernels" / f"{version}-test"
    for rel, text in (sources or {}).items():
        (kdir / "source" / rel).parent.mkdir(parents=True, exist_ok=True)
        (kdir / "source" / rel).write_text(text)
    kdir.mkdir(parents=True, exist_ok=True)
    (kdir / "kernel.json").write_text(json.dumps({"version": version}))
    return KernelInfo(
        name=version,
        release=f"{version}-test",
        version=version,
        design="cow-index",
        vmlinuz=kdir / "vmlinuz",
        modules=kdir / "modules",
        system_map=None,
        packages=(),
    )


def test_splats_of_61_without_source_use_the_printed_symbol_and_known_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("DAXSIM_CACHE", str(tmp_path / "cache"))
    k = kernel_at(tmp_path, "6.1.192", None)
    assert parse_splats(DMESG_61, k) == [
        {"file": "fs/dax.c", "line": 380, "function": "dax_insert_entry",
         "site": "associate_mapping_set"},
        {"file": "fs/dax.c", "line": 404, "function": "dax_disassociate_entry",
         "site": "disassociate_foreign_mapping"},
    ]  # fmt: skip


def test_splat_function_and_site_come_from_the_cached_source(tmp_path, monkeypatch):
    monkeypatch.setenv("DAXSIM_CACHE", str(tmp_path / "cache"))
    # Line 13 of DAX_C is the WARN inside dax_associate_entry (inlined into dax_insert_entry).
    text = "[ 1.0] WARNING: CPU: 0 PID: 1 at fs/dax.c:13 dax_insert_entry+0x227/0x320\n"
    k = kernel_at(tmp_path, "6.1.999", {"fs/dax.c": DAX_C})
    assert parse_splats(text, k) == [
        {"file": "fs/dax.c", "line": 13, "function": "dax_associate_entry",
         "site": "associate_mapping_set"},
    ]  # fmt: skip


def test_splats_of_73_format_and_kernel_bug(tmp_path, monkeypatch):
    monkeypatch.setenv("DAXSIM_CACHE", str(tmp_path / "cache"))
    k = kernel_at(tmp_path, "7.3.4", None)
    assert parse_splats(DMESG_73, k) == [
        {"file": "fs/dax.c", "line": 495, "function": "dax_insert_entry",
         "site": "associate_order_mismatch"},
        {"file": "mm/huge_memory.c", "line": 2001, "function": "zap_huge_pmd", "site": None},
    ]  # fmt: skip


DMESG_618 = """\
[   30.000001] WARNING: CPU: 0 PID: 150 at fs/dax.c:457 dax_insert_entry+0x2f1/0x3a0
[   30.000002] WARNING: CPU: 0 PID: 150 at mm/huge_memory.c:1521 vmf_insert_folio_pmd+0x8d/0xa0
"""


def test_splats_of_618_without_source_map_both_folio_order_warns(tmp_path, monkeypatch):
    """6.18 (no Debian linux-source to read): the order WARN of dax_associate_entry and
    vmf_insert_folio_pmd's refusal, as the rig printed them (phantom-visible.xfsio)."""
    monkeypatch.setenv("DAXSIM_CACHE", str(tmp_path / "cache"))
    k = kernel_at(tmp_path, "6.18.15", None)
    assert [w["site"] for w in parse_splats(DMESG_618, k)] == [
        "associate_order_mismatch",
        "pmd_folio_order",
    ]


def test_enclosing_function_is_none_between_functions():
    assert enclosing_function(DAX_C, 13) == "dax_associate_entry"
    assert enclosing_function(DAX_C, 23) == "dax_is_locked"
    assert enclosing_function(DAX_C, 19) is None


def test_site_rules_of_each_design():
    assert site_of_line("\t\tWARN_ON_ONCE(folio->mapping);") == "associate_mapping_set"
    assert (
        site_of_line("\t\tWARN_ON_ONCE(folio->mapping && folio->mapping != mapping);")
        == "disassociate_foreign_mapping"
    )
    assert (
        site_of_line("\tWARN_ON_ONCE(dax_entry_order(entry) != folio_order(folio));")
        == "associate_order_mismatch"
    )
    assert site_of_line("\tWARN_ON_ONCE(folio_order(folio));") == "folio_init_order"
    assert site_of_line("\tif (WARN_ON_ONCE(folio_order(folio) != PMD_ORDER))") == "pmd_folio_order"
    assert site_of_line("\tWARN_ON_ONCE(!folio->share);") == "associate_share_zero"
    assert site_of_line("\tWARN_ON_ONCE(trunc && !dax_page_is_idle(page));") is None
    # dax_folio_put's refcount check: 7.3.4 fs/dax.c:452, and v6.15-v7.0's form; not
    # dax_folio_init's check of the folio it builds
    assert (
        site_of_line("\t\tWARN_ON_ONCE(folio_ref_count((struct folio *)page));")
        == "folio_put_refcount"
    )
    assert site_of_line("\t\tWARN_ON_ONCE(folio_ref_count(new_folio));") == "folio_put_refcount"
    assert site_of_line("\t\tWARN_ON_ONCE(folio_ref_count(folio));") is None


TRACE = """\
# tracer: nop
  xfs_io-137 [000] .....  10.24: dax_pte_fault: dev 259:0 ino 0x1003 shared ALLOW_RETRY address 0x7f9b87777000 pgoff 0x0
  xfs_io-137 [000] .....  10.25: dax_pte_fault_done: dev 259:0 ino 0x1003 shared ALLOW_RETRY|KILLABLE|USER address 0x7f9b87777000 pgoff 0x0 NOPAGE
  xfs_io-137 [000] .....  10.26: dax_pte_fault_done: dev 259:0 ino 0x1003 shared WRITE|USER address 0x7f9b87778000 pgoff 0x1 MAJOR|NOPAGE
  xfs_io-137 [000] .....  10.27: dax_pte_fault_done: dev 259:0 ino 0x1003 shared USER address 0x7f9b87779000 pgoff 0x9 SIGBUS
  xfs_io-137 [000] .....  10.28: dax_pmd_fault_done: dev 259:0 ino 0x1004 shared USER address 0x7f0000000000 vm_start 0x7f0000000000 vm_end 0x7f0000200000 pgoff 0x0 max_pgoff 0x1ff NOPAGE
  xfs_io-137 [000] .....  10.29: dax_pmd_fault_done: dev 259:0 ino 0x1005 shared USER address 0x7f0000400000 vm_start 0x7f0000400000 vm_end 0x7f0000408000 pgoff 0x0 max_pgoff 0x7 FALLBACK
  xfs_io-137 [000] .....  10.30: dax_insert_mapping: dev 259:0 ino 0x1003 shared address 0x7f9b87777000 radix_entry 0x1
"""  # noqa: E501


def test_fault_counts_take_results_that_mapped_or_fell_back():
    assert fault_counts(TRACE) == {"pte": 2, "pmd": 1, "pmd_fallback": 1}
    assert fault_counts("") == {"pte": 0, "pmd": 0, "pmd_fallback": 0}


def test_lost_events_come_from_the_trace_header():
    assert lost_events("# entries-in-buffer/entries-written: 30/30   #P:1\n") == 0
    assert lost_events("# entries-in-buffer/entries-written: 100/250   #P:1\n") == 150
    assert lost_events(TRACE) == 0  # no header: nothing known to be lost
