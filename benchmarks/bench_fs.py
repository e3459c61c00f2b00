"""Filesystem stress benchmark: replay xfs-265 and generic-175 on sim.fs.FileSystem directly.

Targets (issue 3): xfs-265 (about 465k refcount changes a round) < 15 s and generic-175
(2^20 references to one block, 4 GiB logical files) < 10 s, each with peak memory < 1 GB.
Each case runs in a fresh child process so its peak RSS is its own.

Usage::

    .venv/bin/python benchmarks/bench_fs.py                  # both cases, with all checks
    .venv/bin/python benchmarks/bench_fs.py --no-checks      # operations only
    .venv/bin/python benchmarks/bench_fs.py --case xfs-265
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT.parent / "shared" / "conformance" / "xfstests"
DEFAULT = ("xfs-265", "generic-175")


def _child(case: str, checks: bool) -> dict:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    from test_fs_replay import replay  # noqa: E402  (the throwaway driver of the fs tests)

    text = (CASES / f"{case}.xfsio").read_text()
    if not checks:
        text = "\n".join(ln for ln in text.splitlines() if not ln.startswith(("@final", "@expect")))
    t0 = time.perf_counter()
    c0 = time.process_time()
    r = replay(text, case)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    c = r.fs.counters()
    return {
        "case": case,
        "checks": r.checks,
        "failures": len(r.failures),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "refcount_changes": c["refcount_increments"] + c["refcount_decrements"],
        "blocks_allocated": c["blocks_allocated"],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", action="append", help="case name (default: xfs-265 and generic-175)")
    ap.add_argument("--no-checks", action="store_true", help="drop @expect/@final lines")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, not args.no_checks)))
        return 0
    if not CASES.is_dir():
        print(f"{CASES} absent", file=sys.stderr)
        return 2
    ok = True
    for case in args.case or DEFAULT:
        cmd = [sys.executable, __file__, "--child", case] + (
            ["--no-checks"] if args.no_checks else []
        )
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        res = json.loads(out.strip().splitlines()[-1])
        print(
            f"{res['case']:12s} wall {res['wall_s']:6.2f} s  cpu {res['cpu_s']:6.2f} s  "
            f"peak {res['peak_rss_mb']:5d} MB  "
            f"refcount changes {res['refcount_changes']:>9d}  checks {res['checks']} "
            f"failures {res['failures']}"
        )
        ok &= res["failures"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
