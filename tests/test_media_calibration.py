"""Calibration of the optane-gen1 media model against pmem-timing.md section 0.

Every figure is the model's deterministic simulated output (never wall-clock). The
bandwidth-vs-threads and bandwidth-vs-size curves are not looked up: they come from the
queues, buffers, latencies and per-thread issue windows of ``sim.timing.media``.
"""

from __future__ import annotations

import pytest

from sim.timing.media import simulate
from sim.timing.profiles import load_profile

GEN1 = load_profile("optane-gen1")

# (op, pattern, target ns) -- pmem-timing 1.1, LATTester idle latency, 64 B, 1 thread
IDLE = [
    ("load", "rand", 305.0),
    ("load", "seq", 169.4),
    ("ntstore", "seq", 90.4),
    ("clwb", "seq", 62.3),
]

# (op, threads, target GB/s) -- 1.3, single DIMM, 256 B sequential per-thread streams
THREADS = [
    ("load", 1, 2.92),
    ("load", 4, 6.52),
    ("load", 8, 6.46),
    ("load", 16, 4.73),
    ("load", 24, 3.89),
    ("ntstore", 1, 2.22),
    ("ntstore", 2, 2.21),
    ("ntstore", 4, 2.20),
    ("ntstore", 12, 1.12),
    ("ntstore", 16, 0.94),
    ("ntstore", 24, 0.80),
    ("clwb", 1, 1.44),
    ("clwb", 2, 1.79),
]

# (op, size, target GB/s) -- 1.4, single DIMM, random accesses, 4 threads
SIZES = [
    ("load", 64, 1.68),
    ("load", 128, 3.34),
    ("load", 256, 6.50),
    ("load", 4096, 6.56),
    ("ntstore", 64, 0.55),
    ("ntstore", 128, 1.10),
    ("ntstore", 256, 2.21),
    ("ntstore", 4096, 2.23),
    ("clwb", 64, 0.51),
    ("clwb", 256, 1.75),
]


@pytest.mark.parametrize("op,pattern,target", IDLE)
def test_idle_latency_within_10_percent(op, pattern, target):
    r = simulate(GEN1, op, pattern, 64, 1, dimms=1, requests=20_000, idle=True)
    lat = r.latency_ns[2_000:].mean()
    assert lat == pytest.approx(target, rel=0.10)


@pytest.mark.parametrize("op,threads,target", THREADS)
def test_single_dimm_bandwidth_vs_threads_within_15_percent(op, threads, target):
    r = simulate(GEN1, op, "seq", 256, threads, dimms=1, requests=120_000)
    assert r.bandwidth_gbps == pytest.approx(target, rel=0.15)


@pytest.mark.parametrize("op,size,target", SIZES)
def test_single_dimm_bandwidth_vs_access_size_within_15_percent(op, size, target):
    r = simulate(GEN1, op, "rand", size, 4, dimms=1, requests=80_000)
    assert r.bandwidth_gbps == pytest.approx(target, rel=0.15)


def test_random_64b_read_flat_over_threads():
    # section 0 row 6: 1.5-1.7 GB/s for 1-12 threads
    for threads in (1, 4, 12):
        r = simulate(GEN1, "load", "rand", 64, threads, dimms=1, requests=60_000)
        assert 1.5 * 0.95 <= r.bandwidth_gbps <= 1.7 * 1.05


def test_write_collapse_comes_from_xpbuffer_thrashing():
    wa = {t: simulate(GEN1, "ntstore", "seq", 256, t, dimms=1, requests=80_000) for t in (2, 8, 24)}
    assert wa[2].write_amplification == pytest.approx(1.0, abs=0.01)
    assert wa[2].stats["rmw"] == 0
    # more writer threads -> more open lines than XPBuffer entries -> partial lines are
    # evicted and read-modify-written: the amplification grows with the thread count
    assert 1.0 < wa[8].write_amplification < wa[24].write_amplification
    assert wa[24].write_amplification > 2.0 and wa[24].stats["rmw"] > 0
    # a buffer big enough for every thread's open lines removes the collapse
    big = load_profile(overrides={"rmw.buffer_lines": 1024})
    r = simulate(big, "ntstore", "seq", 256, 24, dimms=1, requests=80_000)
    assert r.bandwidth_gbps == pytest.approx(2.22, rel=0.05)


def test_small_accesses_cost_a_full_xpline():
    r = simulate(GEN1, "load", "rand", 64, 4, dimms=1, requests=40_000)
    assert r.read_amplification == pytest.approx(4.0, rel=0.02)
    w = simulate(GEN1, "ntstore", "rand", 64, 4, dimms=1, requests=40_000)
    assert w.write_amplification == pytest.approx(4.0, rel=0.05)


def test_interleaved_six_dimms_reach_published_peaks():
    # pmem-timing intro: 6-DIMM max read 39.4 GB/s, max write 13.9 GB/s
    rd = simulate(GEN1, "load", "seq", 256, 24, requests=240_000)
    wr = simulate(GEN1, "ntstore", "seq", 256, 4, requests=120_000)
    assert rd.bandwidth_gbps == pytest.approx(39.4, rel=0.15)
    assert wr.bandwidth_gbps == pytest.approx(13.9, rel=0.15)


def test_hotspot_shows_wear_levelling_tail():
    r = simulate(GEN1, "ntstore", "seq", 256, 1, dimms=1, region_bytes=4096, requests=100_000)
    assert r.stats["migrations"] >= 20
    # ~52 us migration stall (VANS 256 x 270 tCK; LENS spikes ~115k cycles)
    assert 45_000 <= r.percentile_ns(99.99) <= 60_000
    assert r.percentile_ns(50) < 2_000
    wide = simulate(GEN1, "ntstore", "seq", 256, 1, dimms=1, requests=100_000)
    assert wide.stats["migrations"] == 0


def test_deterministic_for_a_seed():
    a = simulate(GEN1, "ntstore", "rand", 256, 8, dimms=1, requests=20_000, seed=3)
    b = simulate(GEN1, "ntstore", "rand", 256, 8, dimms=1, requests=20_000, seed=3)
    assert a.bandwidth_gbps == b.bandwidth_gbps
    assert (a.latency_ns == b.latency_ns).all()


@pytest.mark.parametrize(
    "name,rand_ns,seq_ns", [("dram", 101.5, 81.4), ("cxl", 101.5 + 100, 81.4 + 100)]
)
def test_dram_and_cxl_media(name, rand_ns, seq_ns):
    prof = load_profile(name)
    r = simulate(prof, "load", "rand", 64, 1, requests=10_000, idle=True)
    s = simulate(prof, "load", "seq", 64, 1, requests=10_000, idle=True)
    assert r.latency_ns[1000:].mean() == pytest.approx(rand_ns, rel=0.05)
    assert s.latency_ns[1000:].mean() == pytest.approx(seq_ns, rel=0.05)
    # 64 B granularity: no amplification for 64 B random writes
    w = simulate(prof, "ntstore", "rand", 64, 4, requests=20_000)
    assert w.write_amplification == pytest.approx(1.0)


def test_gen2_has_more_bandwidth_same_latency():
    g2 = load_profile("optane-gen2")
    a = simulate(GEN1, "load", "seq", 256, 4, dimms=1, requests=60_000).bandwidth_gbps
    b = simulate(g2, "load", "seq", 256, 4, dimms=1, requests=60_000).bandwidth_gbps
    assert 1.15 <= b / a <= 1.25
    la = simulate(GEN1, "load", "rand", 64, 1, dimms=1, requests=5_000, idle=True).latency_ns.mean()
    lb = simulate(g2, "load", "rand", 64, 1, dimms=1, requests=5_000, idle=True).latency_ns.mean()
    assert lb == pytest.approx(la, rel=0.01)
