"""Concurrent CoW page writes over CPU counts: simulated throughput, optane-gen1 vs DRAM.

``python benchmarks/bench_cow_contention.py [--per-cpu N] [--profiles a,b]`` prints CoW
faults per simulated microsecond for 1..24 CPUs, each CPU writing its own file's pages
(a 4 KiB copy each, no shared locks), in timing mode. The device part of each fault is
priced by the engine from the media model's bandwidth for that many concurrent streams,
so the fall past the contention point of optane-gen1 (the iMC's in-order writes on
interleaved DIMMs, XPBuffer thrashing) shows here; DRAM keeps scaling.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# run as a script, the script's folder (not the checkout) leads sys.path, so ``sim`` would
# be whatever copy is installed: put this checkout first
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_media_contention import _cow_throughput  # noqa: E402

CPUS = (1, 2, 4, 6, 8, 12, 16, 24)


def main() -> None:
    """Print the sweep as Markdown rows."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-cpu", type=int, default=120, help="CoW faults per CPU")
    ap.add_argument("--profiles", default="optane-gen1,dram")
    args = ap.parse_args()
    print("| profile | " + " | ".join(f"{n} CPUs" for n in CPUS) + " |")
    print("|---|" + "---|" * len(CPUS))
    for prof in args.profiles.split(","):
        row = [_cow_throughput(prof, n, args.per_cpu) for n in CPUS]
        print(f"| {prof} | " + " | ".join(f"{x:.2f}" for x in row) + " |")


if __name__ == "__main__":
    main()
