"""Cost follows the struct-page work: what two designs pay apart is what their lines cost.

The stream: a 2 MiB file, reflinked, then mapped with a PMD by the source and by the clone.
The clone's fault associates a shared order-9 extent. Up to v6.14 ``dax_associate_entry``
loops over the entry's 512 struct pages (``for_each_mapped_pfn``: ``dax_page_share_get`` on
each under page-share, ``page->mapping``/``index`` on each under cow-index, which does not
count read faults as shared); from v6.15 it takes the folio once (``dax_to_folio``,
``folio->share++`` in the head page), and the refcounted folio's PMD mapping
(``folio_ref_inc``, ``vmf_insert_folio_pmd``, ``folio_put``) updates its head and second
struct page with atomics. Everything else the fault does is the same in each design. The
price difference is computed here from the cost model's own prices of one line (its
latency vector, XPLine and AIT sizes, atomic), never from a figure of the code.
"""

from __future__ import annotations

import pytest

from sim.dax import DaxFS
from sim.timing import load_profile
from sim.timing.cost import STRUCT_BASE, CostModel, RecordBatch

PMD_BYTES = 2 << 20


def clone_fault_record(variant: str):
    """The work record of the clone's PMD read fault, and the associate's struct pages."""
    dfs = DaxFS(8192, variant)
    src, _ = dfs.open("src", create=True)
    dfs.pwrite(src, 0, PMD_BYTES, 0x61)
    dst, _ = dfs.open("dst", create=True)
    dfs.clone(dst, src)
    v_src = dfs.mmap(1, src, 0, PMD_BYTES, huge=True)
    dfs.mread(v_src, 0, 1)  # first owner of the shared extent
    v_dst = dfs.mmap(2, dst, 0, PMD_BYTES, huge=True)
    wr = dfs.mread(v_dst, 0, 1)  # second owner: the shared association
    assert dfs.stats["pmd_faults"] == 2
    return wr


def strip_struct_pages(wr):
    """The record's fields with its struct-page lines left out."""
    return (
        {s: k for s, k in wr.lines_read.items() if s != "struct_page"},
        {s: k for s, k in wr.lines_written.items() if s != "struct_page"},
        wr.pmem_read,
        wr.pmem_write,
        wr.memcpy_bytes,
        wr.locks,
        wr.tlb_shootdowns,
        wr.faults,
        wr.pages_mapped,
    )


def struct_page_cycles(cm: CostModel, wr) -> int:
    """What the cost model charges for a record's struct-page lines, none touched before
    and few enough to stay in L1, in order, from its own prices: a line seen already hits
    L1 (``lat[0]``); a new one misses L1, L2 and L3 (``lat[2]``) and then costs its medium:
    DRAM ``lat[3]``; on pmem ``lat[4]`` for the first line of an AIT block, ``lat[6]`` for
    the first line of an XPLine in a block already read, ``lat[5]`` for a line of an XPLine
    already read; plus ``kernel.atomic_cycles`` per atomic of the record."""
    lat = cm.lat
    seen: set[int] = set()
    seen_xpl: set[int] = set()
    seen_blk: set[int] = set()
    total = int(wr.atomics) * cm.atomic_cycles
    for k in wr.lines_read.get("struct_page", []) + wr.lines_written.get("struct_page", []):
        if k in seen:
            total += int(lat[0])
            continue
        seen.add(k)
        a = STRUCT_BASE["struct_page"] + 64 * int(k)
        c = int(lat[2])
        if cm.memmap == "dram":
            c += int(lat[3])
        else:
            xl, bl = a // cm.line_bytes, a // cm.block_bytes
            c += int(lat[5] if xl in seen_xpl else lat[6] if bl in seen_blk else lat[4])
            seen_xpl.add(xl)
            seen_blk.add(bl)
        total += c
    return total


@pytest.fixture(scope="module")
def records():
    return {v: clone_fault_record(v) for v in ("cow-index", "page-share", "folio-share")}


def test_the_designs_touch_512_struct_pages_or_one_folio(records):
    sp = {v: sorted(set(r.lines_written.get("struct_page", []))) for v, r in records.items()}
    head = sp["folio-share"][0]
    assert head % 512 == 0
    assert sp["page-share"] == list(range(head, head + 512))
    assert sp["cow-index"] == sp["page-share"]
    # the associate's share++ in the head, the PMD mapping's refcount and map counts
    assert sp["folio-share"] == [head, head + 1]
    # plain stores up to v6.14; the refcounted folio's counts from v6.15
    assert records["page-share"].atomics == records["cow-index"].atomics == 0
    assert records["folio-share"].atomics > 0
    # and nothing else differs: the same xarray, page table, locks, data, faults
    assert strip_struct_pages(records["page-share"]) == strip_struct_pages(records["folio-share"])
    assert strip_struct_pages(records["cow-index"]) == strip_struct_pages(records["page-share"])


@pytest.mark.parametrize("memmap", ["pmem", "dram"])
def test_price_difference_is_the_struct_page_lines(records, memmap):
    """With caches large enough that the 512 lines evict nothing the fault reads again, the
    whole difference between page-share and folio-share is the price of the struct-page
    lines and atomics that differ; with the profile's own caches, the struct-page part of the price
    differs by exactly that, and the rest only by the lines those 512 evicted from L1."""
    big = load_profile("optane-gen1", {"cache.l1_bytes": 1 << 20, "cache.l2_bytes": 4 << 20})
    for prof in (big, load_profile("optane-gen1")):
        parts = {}
        for v in ("page-share", "folio-share", "cow-index"):
            cm = CostModel(prof, memmap=memmap)
            parts[v] = cm.price_parts(RecordBatch.from_records([records[v]]))
        want = struct_page_cycles(cm, records["page-share"]) - struct_page_cycles(
            cm, records["folio-share"]
        )
        assert want > 0
        sp_diff = int(
            parts["page-share"]["struct_page"][0] - parts["folio-share"]["struct_page"][0]
        )
        assert sp_diff == want
        total_diff = int(parts["page-share"]["total"][0] - parts["folio-share"]["total"][0])
        if prof is big:
            assert total_diff == want
        else:
            assert total_diff >= want
        # cow-index writes other words of the same 512 struct pages: the same price
        assert int(parts["cow-index"]["total"][0]) == int(parts["page-share"]["total"][0])


def test_struct_page_cycles_reach_the_summary():
    """A run's summary carries the struct-page cycles the cost model priced, per operation."""
    from sim.runner import simulate
    from sim.scenario import load_scenario

    base = ["run.operations=300", "device.size=1GiB", "output.plots=false"]
    out = {
        v: simulate(load_scenario("vm-clones", base + ["workload.pmd_fraction=1.0"]), variant=v)
        for v in ("page-share", "folio-share")
    }
    for o in out.values():
        s = o.summary
        assert 0 < s["struct_page_cycles"] < s["cycles_total"]
        assert s["struct_page_cycles_per_op"] == s["struct_page_cycles"] / s["operations"]
        assert s["struct_page_lines_per_op"] == s["struct_page_lines"] / s["operations"]
    # fewer struct-page lines cost fewer struct-page cycles
    ps, fs = out["page-share"].summary, out["folio-share"].summary
    assert fs["struct_page_lines"] < ps["struct_page_lines"]
    assert fs["struct_page_cycles"] < ps["struct_page_cycles"]


def truncate_record(variant: str):
    """The work record of truncating a file whose 2 MiB extent is mapped by a PMD."""
    dfs = DaxFS(8192, variant)
    ino, _ = dfs.open("f", create=True)
    dfs.pwrite(ino, 0, PMD_BYTES, 0x61)
    vid = dfs.mmap(1, ino, 0, PMD_BYTES, huge=True)
    dfs.mread(vid, 0, 1)
    head = int(dfs.entries()["pfn"][0])
    return dfs.truncate(ino, 0), head


def test_layout_break_reads_512_struct_pages_or_the_folio():
    """``xfs_break_dax_layouts`` -> ``dax_layout_busy_page_range`` before a truncate reads
    the refcount of each of a PMD entry's 512 pages up to v6.14 (``dax_busy_page``:
    ``for_each_mapped_pfn``), the folio's reference and map counts from v6.15; what the
    record prices for its struct pages is the cost model's price of those lines."""
    big = load_profile("optane-gen1", {"cache.l1_bytes": 1 << 20, "cache.l2_bytes": 4 << 20})
    sp = {}
    for v in ("page-share", "folio-share"):
        wr, head = truncate_record(v)
        sp[v] = wr.lines_read["struct_page"]
        cm = CostModel(big, memmap="pmem")
        parts = cm.price_parts(RecordBatch.from_records([wr]))
        assert int(parts["struct_page"][0]) == struct_page_cycles(cm, wr)
        sp[v + " cycles"] = int(parts["struct_page"][0])
    assert sp["page-share"] == list(range(head, head + 512))
    assert sp["folio-share"] == [head, head + 1]
    assert sp["page-share cycles"] > sp["folio-share cycles"]
