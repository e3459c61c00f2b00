"""``daxsim pagestate`` end to end on a 2M-row trace over a 1M-page device.

    .venv/bin/python benchmarks/pagestate_e2e.py [--rows 2000000] [--pages 1048576]

Writes a random trace (PTE and PMD entries, shared and plain associates, disassociates) to a
temporary directory, then times, each in a fresh process with its peak RSS:

- ``parse``: the pyarrow streaming read of the trace alone (no validation, no replay);
- ``baseline``: a plain compiled loop (numba) that parses the same bytes and applies them
  with the same batch kernel: the "as fast as a compiled loop" yardstick;
- ``pagestate``: ``daxsim pagestate TRACE --variant V --pages N --state-out F --summary-out F``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]

PARSE_ONLY = r"""
import sys, time, resource
import sim.commands.pagestate as ps
t = time.perf_counter()
n = 0
for b in ps._open(sys.argv[1], use_threads=True):
    n += b.num_rows
print(n, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

BASELINE = r"""
import sys, time, resource
import numpy as np
from numba import njit
from sim.memmap import MemMap

@njit
def parse(buf, out):
    # rows of "associate|disassociate,pfn,npages,mapping,index,flag\n" after the header
    pos = 0
    while buf[pos] != 10:
        pos += 1
    pos += 1
    row = 0
    n = buf.shape[0]
    while pos < n:
        out[0, row] = 0 if buf[pos] == 97 else 1
        while buf[pos] != 44:
            pos += 1
        pos += 1
        for c in range(1, 6):
            v = 0
            while pos < n and buf[pos] >= 48:
                v = v * 10 + (buf[pos] - 48)
                pos += 1
            out[c, row] = v
            pos += 1
        row += 1
    return row

buf = np.fromfile(sys.argv[1], dtype=np.uint8)
parse(np.frombuffer(b"h\nassociate,1,1,1,0,0\n", np.uint8), np.zeros((6, 4), np.int64))
t0 = time.perf_counter()
t = time.perf_counter()
buf = np.fromfile(sys.argv[1], dtype=np.uint8)
out = np.empty((6, buf.size // 12 + 1), np.int64)
rows = parse(buf, out)
mm = MemMap(int(sys.argv[2]), sys.argv[3])
mm._apply_checked(*[np.ascontiguousarray(out[c, :rows]) for c in range(6)])
print(rows, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def make_trace(path: Path, rows: int, pages: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    pmd = rng.random(rows) < 0.05
    npages = np.where(pmd, 512, 1)
    pfn = np.where(pmd, 512 * rng.integers(0, pages // 512, rows), rng.integers(0, pages, rows))
    op = rng.integers(0, 2, rows)
    table = pa.table(
        {
            "op": pa.array(np.array(["associate", "disassociate"])[op]),
            "pfn": pfn,
            "npages": npages,
            "mapping": rng.integers(1, 10_000, rows),
            "index": np.where(pmd, 0, rng.integers(0, 1 << 20, rows)),
            "flag": rng.integers(0, 2, rows),
        }
    )
    with open(path, "wb") as f:
        f.write(b"op,pfn,npages,mapping,index,flag\n")
        pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, quoting_style="none"))


def timed(cmd: list[str]) -> tuple[float, int, str]:
    """Run cmd under /usr/bin/time -v: (wall seconds, peak RSS kB, stdout)."""
    t = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, cwd=ROOT, check=True
    )
    wall = time.perf_counter() - t
    rss = next(
        int(ln.split()[-1]) for ln in proc.stderr.splitlines() if "Maximum resident set size" in ln
    )
    return wall, rss, proc.stdout


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--pages", type=int, default=1 << 20)
    ap.add_argument("--variant", default="page-share")
    args = ap.parse_args(argv)
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.csv"
        make_trace(trace, args.rows, args.pages)
        size_mb = trace.stat().st_size / 1e6
        print(
            f"trace: {args.rows:,} rows, {size_mb:.0f} MB, device {args.pages:,} pages, "
            f"variant {args.variant}"
        )
        subprocess.run(
            [py, "-c", BASELINE, str(trace), str(args.pages), args.variant], cwd=ROOT, check=True
        )  # warm numba cache
        wall, rss, out = timed([py, "-c", PARSE_ONLY, str(trace)])
        print(
            f"  parse only (pyarrow)      inner {float(out.split()[1]):6.2f} s   "
            f"process {wall:6.2f} s   peak RSS {rss / 1024:6.0f} MiB"
        )
        wall, rss, out = timed([py, "-c", BASELINE, str(trace), str(args.pages), args.variant])
        print(
            f"  baseline compiled loop    inner {float(out.split()[1]):6.2f} s   "
            f"process {wall:6.2f} s   peak RSS {rss / 1024:6.0f} MiB"
        )
        state, summary = Path(tmp) / "state.csv", Path(tmp) / "summary.json"
        cmd = [
            str(Path(py).with_name("daxsim")),
            "pagestate",
            str(trace),
            "--variant",
            args.variant,
            "--pages",
            str(args.pages),
            "--state-out",
            str(state),
            "--summary-out",
            str(summary),
        ]
        timed(cmd)  # numba cache warm
        wall, rss, _ = timed(cmd)
        s = json.loads(summary.read_text())
        print(
            f"  daxsim pagestate          process {wall:6.2f} s   peak RSS {rss / 1024:6.0f} MiB"
            f"   ({s['operations']:,} ops, {sum(1 for _ in open(state)) - 1:,} state rows)"
        )


if __name__ == "__main__":
    main()
