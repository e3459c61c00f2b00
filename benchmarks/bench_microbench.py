"""Benchmark: simulated memory requests per second of wall time (``daxsim microbench``).

Run as pytest-benchmark (``pytest benchmarks/bench_microbench.py --benchmark-only``) or as a
script (``python benchmarks/bench_microbench.py``), which prints requests/s per case.
Published cycle-level memory simulators manage about 1e2-1e5 requests/s (VANS, DRAMsim3);
the target here is >= 1e6.
"""

from __future__ import annotations

import time

from sim.timing.media import simulate
from sim.timing.profiles import load_profile

CASES = [
    ("load", "seq", 256, 4, 1),
    ("load", "rand", 64, 8, 1),
    ("ntstore", "seq", 256, 24, 1),
    ("clwb", "seq", 256, 2, 1),
    ("load", "seq", 256, 24, 6),
    ("ntstore", "rand", 256, 8, 6),
]
REQUESTS = 1_000_000


def _run(op, pattern, size, threads, dimms, requests=REQUESTS):
    return simulate(load_profile(), op, pattern, size, threads, dimms=dimms, requests=requests)


def test_microbench_requests_per_second(benchmark):
    _run("load", "seq", 256, 4, 1, 1000)  # compile
    r = benchmark.pedantic(_run, args=("ntstore", "seq", 256, 24, 1), rounds=3, iterations=1)
    benchmark.extra_info["requests"] = r.requests
    benchmark.extra_info["requests_per_s"] = r.requests / benchmark.stats["mean"]


if __name__ == "__main__":
    _run("load", "seq", 256, 4, 1, 1000)
    total_req = 0
    total_s = 0.0
    for case in CASES:
        t0 = time.perf_counter()
        r = _run(*case)
        dt = time.perf_counter() - t0
        total_req += r.requests
        total_s += dt
        print(f"{case}: {r.requests / dt / 1e6:.2f} M requests/s "
              f"({r.requests} requests, {dt:.2f} s, {r.bandwidth_gbps:.2f} GB/s simulated)")
    print(f"overall: {total_req / total_s / 1e6:.2f} M simulated requests/s of wall time")
