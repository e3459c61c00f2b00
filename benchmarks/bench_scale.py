"""How cost grows: wall time and peak memory of `daxsim run` against device size, operation
count and sharing degree (functional mode). Each point runs in its own process, so the peak
RSS is that run's alone.

    .venv/bin/python benchmarks/bench_scale.py            # the README table
    .venv/bin/python benchmarks/bench_scale.py --quick    # smaller grid
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "tib-clone-farm.toml"


def run_point(sets: list[str]) -> dict:
    """One `daxsim run` in a child process: wall seconds, peak RSS, the summary row."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "r"
        cmd = [
            sys.executable,
            "-c",
            "import resource, sys, json; from sim.cli import main; rc = main(sys.argv[1:]); "
            "print(json.dumps({'rc': rc, "
            "'maxrss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))",
            "run",
            str(SCENARIO),
            "--quiet",
            "--out",
            str(out),
            "--set",
            "output.plots=false",
        ]
        for s in sets:
            cmd += ["--set", s]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(p.stderr[-2000:])
        info = json.loads(p.stdout.strip().splitlines()[-1])
        import pandas as pd

        s = pd.read_parquet(out / "summary.parquet").iloc[0]
        return {
            "wall_s": round(wall, 2),
            "peak_rss_mb": round(info["maxrss_kb"] / 1024, 1),
            "operations": int(s["operations"]),
            "share_degree_max": int(s["share_degree_max"]),
            "functional_s": float(s["wall_time_functional_s"]),
            "pricing_s": float(s["wall_time_pricing_s"]),
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None, help="write the rows as JSON here")
    args = ap.parse_args()
    small = ["workload.image_size='1GiB'", "workload.image_chunk='64MiB'"]
    grid: list[tuple[str, list[str]]] = []
    sizes = ["1GiB", "16GiB", "256GiB", "1TiB"] if not args.quick else ["1GiB", "16GiB"]
    for size in sizes:  # device size, same workload (a 512 MiB image, 16 clones)
        grid.append(
            (
                f"device {size}",
                [
                    f"device.size='{size}'",
                    "workload.image_size='512MiB'",
                    "workload.clones=16",
                    "workload.image_chunk='64MiB'",
                ],
            )
        )
    for acc in [512, 2048, 8192] if not args.quick else [512]:  # operation count
        grid.append(
            (
                f"accesses/VM {acc}",
                [
                    *small,
                    "device.size='256GiB'",
                    "workload.clones=16",
                    f"workload.accesses_per_vm={acc}",
                ],
            )
        )
    for k in [4, 64, 256] if not args.quick else [4]:  # sharing degree
        grid.append((f"clones {k}", [*small, "device.size='256GiB'", f"workload.clones={k}"]))
    grid.append(("tib-clone-farm (as shipped)", []))
    rows = []
    print(
        f"{'point':32s} {'ops':>9s} {'max share':>9s} {'wall s':>8s} "
        f"{'functional s':>12s} {'peak RSS MB':>11s}"
    )
    for label, sets in grid:
        r = run_point(sets)
        r["point"] = label
        rows.append(r)
        print(
            f"{label:32s} {r['operations']:9,d} {r['share_degree_max']:9d} {r['wall_s']:8.1f} "
            f"{r['functional_s']:12.1f} {r['peak_rss_mb']:11.0f}",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    print(
        f"# machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    return 0


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.exit(main())
