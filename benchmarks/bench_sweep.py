"""Sweep throughput: runs per minute of the sample sweep with 1 and 2 workers.

A script (not collected by pytest-benchmark)::

    .venv/bin/python benchmarks/bench_sweep.py                       # clone-farm, 1 and 2 workers
    .venv/bin/python benchmarks/bench_sweep.py --trim 3              # first 3 clone counts only
    .venv/bin/python benchmarks/bench_sweep.py --workers 1 2 --scheduler local

Each configuration runs the whole sweep into a fresh temporary directory and reports wall
time, runs per minute and the scaling efficiency ``(rate_N / rate_1) / N`` against the first
configuration. Worker start-up is included (it is part of what a user waits for).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from sim.sweep import build_plan, load_sweep, open_backend, run_sweep  # noqa: E402


def _trimmed(spec, trim: int | None):
    if not trim or not spec.factors:
        return spec
    (key, values), *rest = spec.factors
    return dataclasses.replace(spec, factors=((key, values[:trim]), *rest))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", default=str(ROOT / "scenarios" / "sweeps" / "clone-farm.toml"))
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--scheduler", default=None, help="'local' for a dask LocalCluster")
    ap.add_argument(
        "--trim", type=int, default=None, help="keep only the first N values of the first factor"
    )
    args = ap.parse_args(argv)
    spec = _trimmed(load_sweep(args.sweep), args.trim)
    plan = build_plan(spec)
    print(
        f"# {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"sweep {spec.name}: {len(plan.runs)} runs "
        f"({' x '.join(f'{k}[{len(v)}]' for k, v in spec.factors)})"
    )
    print(
        f"{'executor':<30} {'workers':>7} {'wall_s':>8} {'runs/min':>9} {'efficiency':>10} "
        f"{'sum_run_s':>9} {'load_avg':>8}"
    )
    base_rate = None
    base_workers = None
    for n in args.workers:
        with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
            t0 = time.perf_counter()
            backend = open_backend(workers=n, scheduler=args.scheduler)
            outcome = run_sweep(plan, Path(tmp) / "out", backend=backend, plots=False)
            wall = time.perf_counter() - t0
            # Time spent inside the runs (from their summaries): with N busy workers on an
            # otherwise idle machine it stays close to the 1-worker figure.
            table = pd.read_parquet(Path(tmp) / "out" / "sweep.parquet")
            cols = [c for c in table.columns if c.startswith("wall_time_")]
            run_s = float(table[cols].sum().sum()) if cols else float("nan")
        if outcome.failed:
            print(
                f"warning: {len(outcome.failed)} runs failed: {outcome.failed[0][2]}",
                file=sys.stderr,
            )
        rate = len(plan.runs) / wall * 60.0
        if base_rate is None:
            base_rate, base_workers = rate, n
        eff = (rate / base_rate) / (n / base_workers)
        print(
            f"{backend.name:<30} {n:>7} {wall:>8.1f} {rate:>9.1f} {eff:>10.2f} {run_s:>9.1f} "
            f"{os.getloadavg()[0]:>8.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
