"""Instructions per checked hunt op, counted by valgrind (a script).

Wall and CPU time on this 2-core VM drift by ±30% from run to run, which hides the 1–5%
changes most hunt optimisations make. An instruction count does not drift with the load:
the same code, seed and environment give the same count to within ~10 instructions per op
(with one thread per numerical library: see ``_env``), whatever else the machine does. This
script runs a fixed hunt workload twice under ``valgrind --tool=cachegrind --cache-sim=no``:

- ``base``: imports, a warm-up hunt of each design and the measured hunts once (``--ops``
  checked ops per design, seed 1), so that every numba kernel and code path they reach is
  loaded (it is run once natively first, so that numba's cache is filled);
- ``run``: the same plus the measured hunts a second time,

and prints ``(run - base) / ops``: the instructions one checked op costs, all checks
included. Run it before and after a change (``--repo`` points at another checkout) and
compare; about 2 minutes per checkout.

Run: ``.venv/bin/python benchmarks/hunt_instructions.py [--ops 400] [--repo DIR]``
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESIGNS = ("page-share", "cow-index", "folio-share")

_CHILD = """
import sys
from sim.hunt.search import hunt
designs = sys.argv[2].split(",")
def measured():
    return sum(hunt(v, seed=1, budget_ops=int(sys.argv[3])).ops_run for v in designs)
for v in designs:
    hunt(v, seed=0, budget_ops=300)
measured()  # every code path and kernel the measured hunts reach is now loaded
if sys.argv[1] == "run":
    print("OPS", measured())
"""


def _env(repo: Path) -> dict:
    # one thread per library: idle BLAS/OpenMP pool threads spin for a varying number of
    # instructions (the count varied by ±8% before; with one thread it repeats to ±10 per op)
    return dict(
        os.environ,
        PYTHONHASHSEED="0",
        PYTHONPATH=str(repo),
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        NUMBA_NUM_THREADS="1",
    )


def _warm(repo: Path, ops: int) -> None:
    """Run the base phase once natively: numba compiles into its cache (a fresh checkout
    has none; compiling under valgrind in one phase only would spoil the difference)."""
    subprocess.run(
        [sys.executable, "-c", _CHILD, "base", ",".join(DESIGNS), str(ops)],
        cwd=repo,
        env=_env(repo),
        check=True,
        capture_output=True,
    )


def _count(repo: Path, phase: str, ops: int) -> tuple[int, int]:
    """``(instructions, checked ops)`` of one phase under cachegrind."""
    env = _env(repo)
    cmd = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        "-c",
        _CHILD,
        phase,
        ",".join(DESIGNS),
        str(ops),
    ]
    p = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, check=True)
    m = re.search(r"I\s+refs:\s+([\d,]+)", p.stderr)
    if m is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{p.stderr[-2000:]}")
    n = re.search(r"OPS (\d+)", p.stdout)
    return int(m.group(1).replace(",", "")), int(n.group(1)) if n else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=400, help="checked ops per design (default 400)")
    ap.add_argument("--repo", type=Path, default=ROOT, help="checkout to measure (default this)")
    a = ap.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    _warm(a.repo, a.ops)
    base, _ = _count(a.repo, "base", a.ops)
    run, nops = _count(a.repo, "run", a.ops)
    print(
        f"{a.repo}: {nops} checked ops ({', '.join(DESIGNS)}; seed 1), "
        f"{(run - base) / nops:,.0f} instructions per checked op"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
