"""``make kernel-check``: every script on every kernel and in daxsim; the agreement table.

Runs ``daxsim kernel compare`` over all 28 conformance cases (read from
``../shared/conformance/xfstests``), the reproducers of the README (its code blocks that start
with ``@mkfs``, written out as scripts), and ``scenarios/scripts/kernel`` on 6.1, 6.12, 6.18
and 7.3, into ``results/kernel-check/`` (``compare.parquet``, ``agreement.md``, the scripts
taken from the README). The two long conformance cases (:data:`SLOW`: generic/175's 2^20
extent remaps, xfs/265's refcount btree churn) run in a ``kernel compare`` of their own, with a
longer per-script timeout, beside the main one (a second QEMU on the second core), into
``results/kernel-check-slow/``; the table of both is ``results/kernel-check-agreement.md``.
Then the README's hunt with ``--confirm``: every finding of a built-in design replayed on the
cached kernel of its design (``results/kernel-check-hunt/``: the table printed,
``hunt.parquet``). Exit status: that of the comparisons, else the hunt's.

    .venv/bin/python benchmarks/kernel_check.py [--kernels 6.1,7.3] [--out DIR] [--exclude A,B]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = ROOT.parent / "shared" / "conformance" / "xfstests"
KERNELS = "6.1,6.12,6.18,7.3"
#: Conformance cases that take minutes a kernel under TCG: a job of their own, in this order
#: (the longer last, so that a guest killed in it keeps the other's results).
SLOW = ("xfs-265.xfsio", "generic-175.xfsio")
#: Per-script limit of that job (the main job keeps the rig's 600 s).
SLOW_SCRIPT_TIMEOUT_S = 2400


def combined_table(parquets: list[Path], out: Path, since_s: float) -> None:
    """Write the agreement table of the ``compare.parquet`` files written after ``since_s``
    (``time.time()``; an earlier run's file is left out) to ``out``."""
    import pyarrow.parquet as pq

    from sim.kernel.compare import agreement_table

    fresh = [p for p in parquets if p.is_file() and p.stat().st_mtime >= since_s]
    rows = [r for p in fresh for r in pq.read_table(p).to_pylist()]
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".agreement-")
    with os.fdopen(fd, "w") as f:
        f.write(agreement_table(rows))
    os.replace(tmp, out)


def readme_reproducers(readme: Path) -> list[str]:
    """The README's code blocks that are xfs_io scripts (their first line is ``@mkfs``)."""
    blocks = re.findall(r"```\n(.*?)```", readme.read_text(), flags=re.S)
    return [b for b in blocks if b.lstrip().startswith("@mkfs")]


def main(argv: list[str] | None = None) -> int:
    """Write the scripts of the README, run the comparison, print where the table is."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels", default=KERNELS)
    ap.add_argument("--out", default=str(ROOT / "results" / "kernel-check"))
    ap.add_argument(
        "--exclude",
        default="",
        metavar="A,B",
        help="script file names to leave out (e.g. generic-175.xfsio: 2^20 extent remaps)",
    )
    args = ap.parse_args(argv)
    from sim.cli import main as daxsim

    out = Path(args.out)
    # The README's reproducers go to a directory of their own: kernel compare writes only
    # into an output directory that holds nothing but its own earlier output.
    rdir = out.with_name(out.name + "-readme")
    rdir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "readme", ignore_errors=True)  # where this script put them before
    readme = []
    for i, text in enumerate(readme_reproducers(ROOT / "README.md")):
        p = rdir / f"readme-{i + 1}.xfsio"
        p.write_text(text)
        readme.append(str(p))
    scripts = [
        *sorted(str(p) for p in CONFORMANCE.glob("*.xfsio")),
        *readme,
        *sorted(str(p) for p in (ROOT / "scenarios" / "scripts" / "kernel").glob("*.xfsio")),
    ]
    skip = {x.strip() for x in args.exclude.split(",") if x.strip()}
    scripts = [p for p in scripts if Path(p).name not in skip]
    slow = sorted(
        (p for p in scripts if Path(p).name in SLOW), key=lambda p: SLOW.index(Path(p).name)
    )
    scripts = [p for p in scripts if Path(p).name not in SLOW]
    sout = out.with_name(out.name + "-slow")
    t0, started_s = time.monotonic(), time.time()
    job = None
    if slow:  # beside the main job: QEMU is single-threaded, the machine has two cores
        cmd = [sys.executable, "-m", "sim", "kernel", "compare", *slow, "--kernels", args.kernels]
        cmd += ["--out", str(sout), "--overwrite", "--quiet"]
        cmd += ["--script-timeout", str(SLOW_SCRIPT_TIMEOUT_S)]
        cmd += ["--timeout", str(240 + SLOW_SCRIPT_TIMEOUT_S * len(slow))]
        job = subprocess.Popen(cmd, cwd=ROOT)
    argv = ["kernel", "compare", *scripts, "--kernels", args.kernels, "--out", str(out)]
    try:
        status = daxsim([*argv, "--overwrite"])
    except BaseException:
        if job is not None:  # SIGINT: its run_job kills its own QEMU on the way out
            job.send_signal(signal.SIGINT)
            job.wait()
        raise
    print(
        f"{len(scripts)} scripts on {args.kernels} in {time.monotonic() - t0:.0f} s; "
        f"table: {out / 'agreement.md'}",
        file=sys.stderr,
    )
    if job is not None:
        sstatus = job.wait()
        status = status or sstatus
        print(
            f"{', '.join(Path(p).name for p in slow)} on {args.kernels}: done after "
            f"{time.monotonic() - t0:.0f} s (exit {sstatus}); table: {sout / 'agreement.md'}",
            file=sys.stderr,
        )
    table = out.with_name(out.name + "-agreement.md")
    combined_table([out / "compare.parquet", sout / "compare.parquet"], table, started_s)
    print(f"both: {table}", file=sys.stderr)
    # The README's hunt, its findings confirmed on the kernels (the Python engine finds
    # what the compiled one finds, without its first compile).
    hunt = ["hunt", "--all-variants", "--budget", "2000", "--seed", "0", "--engine", "python"]
    hunt += ["--confirm", "--quiet", "--out", str(out.with_name(out.name + "-hunt"))]
    hstatus = daxsim([*hunt, "--overwrite"])
    return status or hstatus


if __name__ == "__main__":
    sys.exit(main())
