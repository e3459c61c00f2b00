"""The SimPy engine: functional vs timing mode, locks, media queues, time series."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine import Engine, run_functional, run_timing
from sim.errors import InputError
from sim.work import WorkRecord


def fault(pfn, idx, mapping, cow=False):
    r = WorkRecord("cow_fault" if cow else "read_fault")
    r.faults = 1
    r.pages_mapped = 1
    r.read("xarray_node", mapping * 100 + idx // 64)
    r.write("xarray_node", mapping * 100 + idx // 64)
    r.read("extent", mapping)
    r.write("struct_page", pfn)
    r.write("pagetable", mapping * 10_000 + idx)
    if cow:
        r.write("struct_page", pfn + 100_000)
        r.pmem_read.append((pfn * 4096, 4096))
        r.pmem_write.append(((pfn + 100_000) * 4096, 4096))
        r.memcpy_bytes = 4096
    r.locks += [("xa_lock", mapping), ("entry", mapping, idx), ("xa_lock", mapping)]
    return r


def streams(ncpu=8, per_cpu=200, *, same_entry=False, same_mapping=False, cow=0.0, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for c in range(ncpu):
        s = []
        for _ in range(per_cpu):
            m = 0 if same_mapping or same_entry else c
            idx = 0 if same_entry else int(rng.integers(0, 4096))
            r = fault(int(rng.integers(0, 1 << 22)), idx, m, bool(rng.random() < cow))
            s.append((r.op, r))
        out.append(s)
    return out


@pytest.fixture(scope="module")
def engine():
    return Engine("optane-gen1", cpus=8)


def test_one_cpu_timing_equals_functional():
    st = streams(ncpu=1, per_cpu=300, cow=0.5)
    f = run_functional(st)
    t = run_timing(st)
    assert (f.latency_cycles == t.latency_cycles).all()
    assert f.makespan_cycles == t.makespan_cycles
    assert (f.work_cycles == t.work_cycles).all()


def test_modes_share_input_and_work(engine):
    st = streams(cow=0.3)
    f = engine.run(st, mode="functional")
    t = engine.run(st, mode="timing")
    assert f.ops == t.ops and (f.cpu == t.cpu).all()
    assert (t.latency_cycles >= t.work_cycles).all()
    assert (f.latency_cycles == f.work_cycles).all()
    assert t.makespan_cycles >= f.makespan_cycles


def test_entry_lock_contention_emerges(engine):
    spread = engine.run(streams(same_mapping=True), mode="timing")
    same = engine.run(streams(same_entry=True), mode="timing")
    assert same.utilisation["entry_lock_waits"] > 100
    assert spread.utilisation["entry_lock_waits"] < same.utilisation["entry_lock_waits"] / 10
    assert np.percentile(same.wait_cycles, 99) > np.percentile(spread.wait_cycles, 99)
    assert same.latency_cycles.mean() > 2 * spread.latency_cycles.mean()


def test_xa_lock_contention_per_mapping(engine):
    private = engine.run(streams(same_mapping=False), mode="timing")
    shared = engine.run(streams(same_mapping=True), mode="timing")
    assert shared.utilisation["xa_lock_waits"] > private.utilisation["xa_lock_waits"]
    assert private.utilisation["xa_lock_waits"] == 0
    assert shared.utilisation["xa_locks"] == 1 and private.utilisation["xa_locks"] == 8


def test_cow_copies_queue_on_the_media(engine):
    t = engine.run(streams(cow=1.0), mode="timing")
    one = engine.run(streams(ncpu=1, cow=1.0), mode="timing")
    assert t.utilisation["media_write"] > 0.8
    # 8 copiers on a device that sustains ~3 single-thread write streams: they wait
    assert t.latency_cycles.mean() > 1.5 * one.latency_cycles.mean()
    dram = Engine("dram", cpus=8).run(streams(cow=1.0), mode="timing")
    assert dram.latency_cycles.mean() < t.latency_cycles.mean()


def test_by_op_and_records(engine):
    t = engine.run(streams(cow=0.5), mode="timing")
    stats = t.by_op()
    assert set(stats) == {"cow_fault", "read_fault"}
    assert stats["cow_fault"]["mean_cycles"] > stats["read_fault"]["mean_cycles"]
    assert stats["cow_fault"]["count"] + stats["read_fault"]["count"] == 1600
    rows = t.to_records()
    assert len(rows) == 1600 and rows[0]["latency_ns"] == pytest.approx(
        rows[0]["latency_cycles"] / 2.2
    )


def test_time_series_and_hook(engine):
    seen = []
    t = engine.run(
        streams(per_cpu=50),
        mode="timing",
        sample_cycles=5000,
        on_op=lambda c, op, s, e: seen.append((c, e - s)),
    )
    ts = t.timeseries
    assert len(ts) > 3
    assert [x["ops_done"] for x in ts] == sorted(x["ops_done"] for x in ts)
    assert ts[-1]["ops_done"] == 400 and ts[-1]["faults_done"] == 400
    assert len(seen) == 400


def test_deterministic(engine):
    a = engine.run(streams(same_mapping=True, cow=0.3), mode="timing")
    b = engine.run(streams(same_mapping=True, cow=0.3), mode="timing")
    assert (a.end_cycles == b.end_cycles).all()


def test_bad_input(engine):
    with pytest.raises(InputError):
        engine.run([[("op", "not a record")]])
    with pytest.raises(InputError):
        engine.run([[1, 2, 3]])
    with pytest.raises(InputError):
        engine.run(streams(), mode="fast")
    with pytest.raises(InputError):
        Engine(cpus=2).run(streams(ncpu=3, per_cpu=1))


def test_run_engine_keeps_record_order():
    from sim.engine import run_engine
    from sim.timing.cost import CostModel

    recs = [r for s in streams(ncpu=4, per_cpu=30, cow=0.3) for _, r in s]
    cpus = np.arange(len(recs)) % 4
    model = CostModel("optane-gen1", memmap="pmem", cpus=4)
    out = run_engine(model, recs, cpus)
    assert out.ops == [r.op for r in recs]
    assert (out.cpu == cpus).all()
    assert (out.latency_cycles >= out.work_cycles).all()
    assert out.stats["makespan_cycles"] == out.makespan_cycles > 0
    # the same records, one CPU stream each, give the same latencies
    direct = Engine(cost=model).run([[(r.op, r) for r in recs[k::4]] for k in range(4)])
    assert sorted(direct.latency_cycles.tolist()) == sorted(out.latency_cycles.tolist())


def _logger(log):
    return lambda *x: log.append(x)


@pytest.mark.parametrize(
    "ncpu,kw",
    [
        (8, {"same_mapping": True}),
        (8, {"same_entry": True, "cow": 0.3}),
        (2, {"same_entry": True, "cow": 0.3}),
        (8, {"same_mapping": True, "cow": 0.7}),
        (8, {"cow": 0.5}),
        (1, {"cow": 0.5}),
        (4, {"same_mapping": True, "cow": 0.3, "strip": True}),
    ],
)
def test_timestamp_engine_equals_event_per_step_reference(engine, ncpu, kw):
    """The run with timestamped locks and channels gives every operation the same start and
    end as the reference run (simpy.Resource channels, lock releases as events); only
    lock waits of zero cycles, which the reference counts when a release and an acquire
    fall on the same cycle, are not counted."""
    kw = dict(kw)
    strip = kw.pop("strip", False)
    st = streams(ncpu, 120, seed=5, **kw)
    if strip:  # every third operation takes no lock, some of them no device either
        for s in st:
            for _op, r in s[::3]:
                r.locks = []
                if r.op == "read_fault":
                    r.pmem_read.clear()
    cpu, ops, recs, parts = engine._price(st)
    for sample in (None, 40_000):
        log_a: list = []
        log_b: list = []
        a = engine._timing(cpu, ops, recs, parts, sample, _logger(log_a))
        b = engine._timing_events(cpu, ops, recs, parts, sample, _logger(log_b))
        assert a.start_cycles.tolist() == b.start_cycles.tolist()
        assert a.end_cycles.tolist() == b.end_cycles.tolist()
        assert a.timeseries == b.timeseries
        assert sorted(log_a) == sorted(log_b)
        for k in ("xa_lock", "entry_lock", "media_read", "media_write", "xa_locks", "entry_locks"):
            assert a.utilisation[k] == pytest.approx(b.utilisation[k], rel=1e-12)
        for k in ("xa_lock_waits", "entry_lock_waits"):
            assert a.utilisation[k] <= b.utilisation[k]
        bare = engine._timing(cpu, ops, recs, parts, None, None)  # no hook: fewest events
        assert bare.start_cycles.tolist() == b.start_cycles.tolist()
        assert bare.end_cycles.tolist() == b.end_cycles.tolist()
        if kw.get("same_mapping") or (kw.get("same_entry") and ncpu > 1):
            assert a.utilisation["xa_lock_waits"] + a.utilisation["entry_lock_waits"] > 0
