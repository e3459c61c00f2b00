"""Replay the whole xfstests conformance folder: wall time and peak memory per case.

Run as a script (each case in a fresh interpreter, so peak RSS is per case)::

    .venv/bin/python benchmarks/bench_conformance.py [--variant page-share] [--json out.json]

or under pytest-benchmark (whole folder in one process)::

    .venv/bin/python -m pytest benchmarks/bench_conformance.py --benchmark-only

Targets (issue 3): xfs-265 < 15 s, generic-175 < 10 s, each < 1 GB peak; folder < 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES_DIR = ROOT.parent / "shared" / "conformance" / "xfstests"

_CHILD = r"""
import json, resource, sys, time
from sim.xfsio.runner import run_script
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
path, variant = sys.argv[1], sys.argv[2]
text = open(path).read()
t0 = time.perf_counter()
r = run_script(text, path.rsplit("/", 1)[-1], variant)
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
c = r.result.counts()
print(json.dumps({"wall_s": wall, "peak_rss_mb": peak / 1024, "import_rss_mb": base / 1024,
                  "ok": r.result.ok, **c}))
"""


def run_case(path: Path, variant: str) -> dict:
    """Replay one case in a fresh interpreter; returns its figures."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), variant],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_folder_in_process(variant: str) -> float:
    """Wall seconds to replay every case in one process (parse + run)."""
    from sim.xfsio.runner import run_script

    t0 = time.perf_counter()
    for p in sorted(CASES_DIR.glob("*.xfsio")):
        r = run_script(p.read_text(), p.name, variant)
        if not r.result.ok:
            raise AssertionError(f"{p.name} failed under {variant}")
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="page-share")
    ap.add_argument("--json", default=None, help="write the figures to this file")
    ap.add_argument("--only", default=None, help="glob of case names (default: all)")
    args = ap.parse_args(argv)
    if not CASES_DIR.is_dir():
        print(f"{CASES_DIR} is absent", file=sys.stderr)
        return 2
    cases = sorted(CASES_DIR.glob(f"{args.only or '*'}.xfsio"))
    rows = {}
    print(f"{'case':16s} {'wall s':>8s} {'peak MB':>8s}  checks")
    for p in cases:
        r = run_case(p, args.variant)
        rows[p.stem] = r
        print(
            f"{p.stem:16s} {r['wall_s']:8.2f} {r['peak_rss_mb']:8.0f}  "
            f"{r['checks_passed']}+{r['model_checks_passed']}m ok={r['ok']}",
            flush=True,
        )
    total_cases = sum(r["wall_s"] for r in rows.values())
    folder = run_folder_in_process(args.variant) if args.only is None else None
    print(f"sum of per-case wall: {total_cases:.2f} s")
    if folder is not None:
        print(f"whole folder in one process: {folder:.2f} s")
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(
                {
                    "variant": args.variant,
                    "cases": rows,
                    "folder_s": folder,
                    "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                    "cpu_count": os.cpu_count(),
                },
                fh,
                indent=2,
            )
        os.replace(tmp, args.json)
    return 0 if all(r["ok"] for r in rows.values()) else 1


def test_bench_conformance_folder(benchmark):
    """pytest-benchmark entry: the folder replayed in one process under page-share."""
    if not CASES_DIR.is_dir():
        import pytest

        pytest.skip(f"{CASES_DIR} is absent")
    benchmark.pedantic(run_folder_in_process, args=("page-share",), rounds=1, iterations=1)


if __name__ == "__main__":
    sys.exit(main())
