"""Compile time of the compiled twins and kernels: first use, and the load from numba's cache.

Run as a script for the figures recorded in BENCHMARKS.md::

    .venv/bin/python benchmarks/bench_compile.py [--what hunt,run] [--no-helper]

Each figure is a fresh process with an empty temporary ``NUMBA_CACHE_DIR`` (the first use),
then the same command again on the cache it filled (the load): wall seconds, and CPU seconds
of the process and of the children it waited for (the helper process that compiles half of
the hunt engine meanwhile, :func:`sim.jit.compile_notice`). The machine's load average is
printed alongside: on a shared machine the CPU seconds are the comparable figure.

- ``hunt``: ``hunt("page-share", budget_ops=40)``, the compiled episode engine
  (``sim/hunt/jit``, ``sim/fs/compiled*``, ``sim/dax/compiled``, the design kernels);
- ``run``: ``daxsim run`` of the default scenario with 2 clones (the memmap kernels, the
  timing cache and media engine).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROGRAMS = {
    "hunt": "from sim.hunt.search import hunt; hunt('page-share', seed=0, budget_ops=40)",
    "run": (
        "import tempfile; from sim.cli import main; "
        "main(['run', 'default', '--quiet', '--set', 'workload.clones=2', "
        "'--out', tempfile.mkdtemp() + '/out'])"
    ),
}


def _measure(prog: str, cache: str, helper: bool) -> tuple[float, float]:
    """``(wall s, CPU s)`` of one fresh process running ``prog`` on numba cache ``cache``."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    if not helper:
        env["DAXSIM_NO_COMPILE_HELPER"] = "1"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", prog], cwd=ROOT, env=env, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--what", default="hunt,run", help="comma-separated: hunt, run")
    ap.add_argument("--no-helper", action="store_true", help="compile in one process only")
    a = ap.parse_args(argv)
    print(f"# load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; cpus {os.cpu_count()}")
    print(
        f"{'what':6s} {'first wall s':>13s} {'first CPU s':>12s} {'load wall s':>12s} "
        f"{'load CPU s':>11s}"
    )
    for what in a.what.split(","):
        with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
            w1, c1 = _measure(PROGRAMS[what], cache, not a.no_helper)
            w2, c2 = _measure(PROGRAMS[what], cache, not a.no_helper)
        print(f"{what:6s} {w1:13.1f} {c1:12.1f} {w2:12.1f} {c2:11.1f}", flush=True)
    print(f"# load after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
