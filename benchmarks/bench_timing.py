"""Benchmarks of the timing layer: functional-mode pricing and the SimPy engine.

* functional mode: page-fault work records priced per second of wall time by
  ``CostModel.price_batch`` on a ``RecordBatch`` (target >= 1,000,000/s), and the same with
  the conversion from ``WorkRecord`` objects included (``price_many``);
* timing mode: simulated operations per second of wall time with 8 CPUs on a fault-heavy
  stream (target >= 50,000/s), pricing included.

Run as pytest-benchmark (``pytest benchmarks/bench_timing.py --benchmark-only``) or as a
script (``python benchmarks/bench_timing.py``), which prints best-of-3 figures.
"""

from __future__ import annotations

import time

import numpy as np

from sim.engine import Engine
from sim.timing.cost import CostModel, RecordBatch
from sim.work import WorkRecord


def fault_record(pfn: int, idx: int, mapping: int, cow: bool) -> WorkRecord:
    """A 4 KiB DAX fault as sim.dax records it (CoW ones copy the page)."""
    r = WorkRecord("cow_fault" if cow else "read_fault")
    r.faults = 1
    r.pages_mapped = 1
    r.read("xarray_node", mapping * 100 + idx // 64)
    r.write("xarray_node", mapping * 100 + idx // 64)
    r.read("extent", mapping)
    r.write("struct_page", pfn)
    r.write("pagetable", mapping * 10_000 + idx // 8)
    if cow:
        r.write("refcount", mapping)
        r.write("struct_page", pfn + 1_000_000)
        r.pmem_read.append((pfn * 4096, 4096))
        r.pmem_write.append(((pfn + 1_000_000) * 4096, 4096))
        r.memcpy_bytes = 4096
    r.locks += [("xa_lock", mapping), ("entry", mapping, idx), ("xa_lock", mapping)]
    return r


def fault_stream(n: int, seed: int = 0, cow: float = 0.3, mappings: int = 64):
    rng = np.random.default_rng(seed)
    pfn = rng.integers(0, 1 << 26, n)
    idx = rng.integers(0, 1 << 18, n)
    mid = rng.integers(0, mappings, n)
    c = rng.random(n) < cow
    return [fault_record(int(pfn[i]), int(idx[i]), int(mid[i]), bool(c[i])) for i in range(n)]


def per_cpu(records, ncpu=8):
    return [[(r.op, r) for r in records[k::ncpu]] for k in range(ncpu)]


def _best(fn, rounds=3):
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def test_functional_price_batch(benchmark):
    recs = fault_stream(200_000)
    batch = RecordBatch.from_records(recs)
    cm = CostModel("optane-gen1", memmap="pmem")
    cm.price_batch(RecordBatch.from_records(recs[:10]))
    benchmark.pedantic(cm.price_batch, args=(batch,), rounds=3, iterations=1)
    if benchmark.stats:
        benchmark.extra_info["faults_per_s"] = batch.n / benchmark.stats["min"]


def test_timing_engine_8cpu(benchmark):
    st = per_cpu(fault_stream(40_000))
    eng = Engine("optane-gen1", cpus=8)
    benchmark.pedantic(eng.run, args=(st,), rounds=3, iterations=1)
    if benchmark.stats:
        benchmark.extra_info["ops_per_s"] = 40_000 / benchmark.stats["min"]


if __name__ == "__main__":
    recs = fault_stream(200_000)
    cm = CostModel("optane-gen1", memmap="pmem")
    cm.price_batch(RecordBatch.from_records(recs[:10]))
    batch = RecordBatch.from_records(recs)
    t = _best(lambda: cm.price_batch(batch))
    print(
        f"functional price_batch: {batch.n / t / 1e6:.2f} M faults/s "
        f"({batch.line_key.size / batch.n:.1f} lines per fault)"
    )
    t = _best(lambda: RecordBatch.from_records(recs))
    print(f"RecordBatch.from_records: {len(recs) / t / 1e3:.0f} k records/s")
    t = _best(lambda: cm.price_many(recs))
    print(f"functional price_many (conversion included): {len(recs) / t / 1e3:.0f} k faults/s")
    eng = Engine("optane-gen1", cpus=8)
    st = per_cpu(recs[:40_000])
    t = _best(lambda: eng.run(st, mode="functional"))
    print(f"engine functional mode, 8 CPUs: {40_000 / t / 1e3:.0f} k ops/s")
    t = _best(lambda: eng.run(st, mode="timing"))
    print(f"engine timing mode, 8 CPUs: {40_000 / t / 1e3:.1f} k ops/s (pricing included)")
    cpu, ops, rr, parts = eng._price(st)
    t = _best(lambda: eng._timing(cpu, ops, rr, parts, None, None))
    print(f"engine timing mode, SimPy part only: {40_000 / t / 1e3:.1f} k ops/s")
