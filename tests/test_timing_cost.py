"""CostModel: pricing of work records, cache locality, memmap placement."""

from __future__ import annotations

import numpy as np
import pytest

from sim.errors import InputError
from sim.timing.cost import CostModel, RecordBatch
from sim.timing.profiles import load_profile
from sim.work import WorkRecord


def cow_fault(pfn: int, new_pfn: int, idx: int, mapping: int = 1) -> WorkRecord:
    """A CoW write fault as the fsdax model records it: xarray walk and update, extent and
    refcount lookups, the old and new struct pages, a PTE, the 4 KiB copy, two locks."""
    r = WorkRecord("cow_fault")
    r.faults = 1
    r.pages_mapped = 1
    r.read("xarray_node", mapping * 1000 + idx // 64)
    r.write("xarray_node", mapping * 1000 + idx // 64)
    r.read("extent", mapping)
    r.write("refcount", 7)
    r.write("struct_page", pfn)
    r.write("struct_page", new_pfn)
    r.write("pagetable", mapping * 100_000 + idx // 8)
    r.pmem_read.append((pfn * 4096, 4096))
    r.pmem_write.append((new_pfn * 4096, 4096))
    r.memcpy_bytes = 4096
    r.locks += [("xa_lock", mapping), ("entry", mapping, idx)]
    return r


def cow_stream(n=4000, seed=0, npages=1 << 26):
    rng = np.random.default_rng(seed)
    pfns = rng.integers(0, npages, size=(n, 2))
    return [cow_fault(int(a), int(b), i) for i, (a, b) in enumerate(pfns)]


def test_memmap_on_pmem_costs_more_per_cow_fault():
    """Same CoW-heavy stream, optane-gen1: memmap on pmem vs in DRAM.

    Each fault dirties two cold struct pages (random pfns over a 256 GiB device, so the
    L3 never holds them). A cold struct-page miss costs the random pmem load latency
    (305 ns) instead of the DRAM one (101.5 ns): +203.5 ns = 448 cycles at 2.2 GHz, and each
    dirtied line later costs a partial-XPLine write-back, (39.4 + 115.3) / 6 DIMMs = 26 ns
    = 56 cycles of device time, instead of ~5 ns in DRAM. Expected difference per fault:
    2 x (448 + 56 - 11) ~= 990 cycles (~450 ns) -- pmem-timing section 6's "+200 ns per
    struct-page miss" twice, plus the write-backs.
    """
    recs = cow_stream()
    dram = CostModel("optane-gen1", memmap="dram").price_many(recs)
    pmem = CostModel("optane-gen1", memmap="pmem").price_many(recs)
    warm = slice(1000, None)  # after the caches reached steady state
    diff = pmem[warm].mean() - dram[warm].mean()
    assert pmem[warm].mean() > dram[warm].mean()
    assert 800 <= diff <= 1150
    # the difference is entirely struct-page work
    sp_only = [
        WorkRecord("x", lines_written={"struct_page": r.lines_written["struct_page"]}) for r in recs
    ]
    d2 = (
        CostModel("optane-gen1", memmap="pmem").price_many(sp_only)[warm].mean()
        - CostModel("optane-gen1", memmap="dram").price_many(sp_only)[warm].mean()
    )
    assert d2 == pytest.approx(diff, rel=0.05)


def test_memmap_placement_irrelevant_when_struct_pages_are_hot():
    recs = cow_stream(n=2000, npages=256)  # 256 pages: the memmap fits in the L1/L2
    dram = CostModel("optane-gen1", memmap="dram").price_many(recs)[500:].mean()
    pmem = CostModel("optane-gen1", memmap="pmem").price_many(recs)[500:].mean()
    assert pmem == pytest.approx(dram, rel=0.02)


def test_locality_and_working_set_change_the_cost():
    def lines(keys):
        return [WorkRecord("r", lines_read={"extent": [int(k)]}) for k in keys]

    rng = np.random.default_rng(1)
    small = CostModel().price_many(lines(rng.integers(0, 256, 20_000)))  # 16 KiB: L1
    mid = CostModel().price_many(lines(rng.integers(0, 8192, 80_000)))  # 512 KiB: L2
    big = CostModel().price_many(lines(rng.integers(0, 1 << 24, 20_000)))  # 1 GiB: DRAM
    p = load_profile()
    op = p.cycles("kernel.op_overhead_ns")
    assert small[5000:].mean() - op == pytest.approx(p["cache.l1_cycles"], abs=1)
    assert p["cache.l1_cycles"] < mid[60000:].mean() - op <= p["cache.l2_cycles"] + 2
    dram_miss = p.cycles("cpu.uncore_read_ns") + p.cycles("dram.row_miss_ns")
    assert big[5000:].mean() - op > 0.95 * dram_miss


def test_repeated_record_is_cheaper_when_warm():
    cm = CostModel(memmap="pmem")
    r = cow_fault(12345, 67890, 3)
    first = cm.price(r)
    second = cm.price(r)
    assert second < first


def test_price_equals_price_many_and_batch():
    recs = cow_stream(n=300)
    a = np.array([c for c in (lambda m: [m.price(r) for r in recs])(CostModel(memmap="pmem"))])
    b = CostModel(memmap="pmem").price_many(recs)
    c = CostModel(memmap="pmem").price_batch(RecordBatch.from_records(recs))
    assert (a == b).all() and (b == c).all()
    parts = CostModel(memmap="pmem").price_parts(RecordBatch.from_records(recs))
    assert (parts["total"] == b).all()
    assert (
        sum(parts[k] for k in ("entry", "xarray", "lines", "device", "tlb", "pte")).tolist()
        == b.tolist()
    )


def test_fault_tlb_and_copy_components():
    p = load_profile()
    one = CostModel(p, cpus=1)
    many = CostModel(p, cpus=8)
    r = WorkRecord("unmap", tlb_shootdowns=1)
    base = p.cycles("kernel.op_overhead_ns")
    assert one.price(r) - base == p.cycles("kernel.tlb_shootdown_per_cpu_ns")
    assert many.price(r) - base == (
        p.cycles("kernel.tlb_shootdown_base_ns") + 7 * p.cycles("kernel.tlb_shootdown_per_cpu_ns")
    )
    f = WorkRecord("read_fault", faults=1)
    assert one.price(f) == p.cycles("kernel.fault_overhead_ns")
    small = WorkRecord("cow", pmem_read=[(0, 4096)], pmem_write=[(1 << 20, 4096)])
    huge = WorkRecord("cow", pmem_read=[(0, 2 << 20)], pmem_write=[(4 << 20, 2 << 20)])
    cs, ch = one.price(small), one.price(huge)
    assert ch > 100 * cs / 2
    # 2 MiB written by one thread on 6 interleaved DIMMs at ~4.5 GB/s: ~460 us
    w2m = one.price(WorkRecord("z", pmem_write=[(0, 2 << 20)])) / 2.2
    assert 350_000 < w2m < 600_000


def test_dram_profile_device_is_faster():
    r = WorkRecord("cow", pmem_read=[(0, 4096)], pmem_write=[(1 << 20, 4096)])
    assert CostModel("dram").price(r) < CostModel("optane-gen1").price(r)


def test_bad_input():
    with pytest.raises(InputError):
        CostModel(memmap="nvme")
    with pytest.raises(InputError):
        CostModel(cpus=0)
    with pytest.raises(InputError):
        CostModel().price(WorkRecord("x", lines_read={"inode": [1]}))
    with pytest.raises(InputError):
        CostModel().price(WorkRecord("x", lines_read={"extent": [-1]}))
    with pytest.raises(InputError):
        CostModel(cpus=2).price(WorkRecord("x"), cpu=2)
