"""``daxsim sweep``: run a grid of scenarios on this machine or a dask cluster.

::

    daxsim sweep SWEEP.toml [--workers N] [--scheduler ADDRESS|local] [--out DIR]
                            [--resume] [--quiet]

Exit status: 0 every run ok; 1 some runs failed (listed at the end); 2 bad input (nothing
runs, nothing is written); 130 interrupted by SIGINT (finished runs are kept: continue with
``--resume --out DIR``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from sim.commands._common import check_out_path
from sim.errors import InputError

__all__ = ["configure", "main"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the sweep arguments to ``parser``."""
    parser.add_argument(
        "sweep_file",
        metavar="SWEEP.toml",
        help="sweep file: base scenario, [set] overrides and [factors] (see scenarios/sweeps/)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="runs at once (default: the number of cores); 1 runs them in this process",
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS|local",
        help="run on dask.distributed: a scheduler address (tcp://HOST:8786) or 'local' "
        "for a LocalCluster of --workers processes (needs daxsim[dask])",
    )
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="output directory (default: results/sweep-<name>-<UTC timestamp>/)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the sweep in --out DIR: run only the runs not finished "
        "(failed runs are retried)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the sweep and list its runs without running anything",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    """Run ``daxsim sweep``; returns the exit status."""
    from sim.sweep import build_plan, load_sweep, open_backend, prepare_output, run_sweep

    spec = load_sweep(args.sweep_file)
    plan = build_plan(spec)
    if args.dry_run:
        _print_plan(plan)
        return 0
    if args.resume and not args.out:
        raise InputError(
            "--resume needs --out DIR, the directory of the sweep to continue", where="--resume"
        )
    out_dir = Path(args.out) if args.out else Path("results") / f"sweep-{spec.name}-{_timestamp()}"
    check_out_path(out_dir, "--out")
    if args.resume and plan.entropy_source == "random":
        # No seed anywhere in the sweep: reuse the entropy the sweep drew when it started.
        stored = _stored_plan(out_dir)
        if stored is not None and "entropy" in stored:
            plan = build_plan(spec, entropy=int(stored["entropy"]))
    prepare_output(plan, out_dir.resolve(), resume=args.resume)  # fail before starting workers
    backend = open_backend(workers=args.workers, scheduler=args.scheduler)
    progress = not args.quiet and sys.stderr.isatty()
    if not args.quiet:
        print(
            f"sweep {spec.name}: {len(plan.runs)} runs on {backend.name} -> {out_dir}",
            file=sys.stderr,
        )
    outcome = run_sweep(
        plan,
        out_dir,
        backend=backend,
        resume=args.resume,
        progress=progress,
        log=(lambda s: None) if args.quiet else None,
    )
    _report(args, outcome)
    return outcome.exit_status


def _timestamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _stored_plan(out_dir: Path) -> dict | None:
    try:
        return json.loads((out_dir / "sweep.json").read_text())
    except (OSError, ValueError):
        return None


def _print_plan(plan) -> None:
    keys = plan.factor_keys
    print(
        f"sweep {plan.spec.name}: {len(plan.runs)} runs, "
        f"entropy {plan.entropy} ({plan.entropy_source})"
    )
    print(f"base: {plan.spec.base}")
    for k, v in plan.spec.fixed.items():
        print(f"set {k} = {v!r}")
    for run in plan.runs:
        seed = f"  (spawn key {run.spawn_key})" if run.spawn_key != run.index else ""
        print(f"  {run.dirname}  " + "  ".join(f"{k}={run.factors[k]!r}" for k in keys) + seed)


def _report(args, outcome) -> None:
    out = outcome.out_dir
    done_now = len(outcome.ok) + len(outcome.failed) - outcome.skipped
    print(
        f"{len(outcome.ok)} ok, {len(outcome.failed)} failed, {outcome.missing} not run "
        f"of {outcome.total} runs ({done_now} run now, {outcome.skipped} already done)"
    )
    print(f"table: {out / 'sweep.parquet'}")
    if outcome.failed:
        print("failed runs:")
        for index, dirname, error in outcome.failed:
            print(f"  run {index} ({dirname}): {error}")
        print(f"details in {out / 'runs'}/<run>.failed.json; --resume retries them")
    if outcome.broken:
        print(
            f"the executor stopped ({outcome.broken}); {outcome.missing} runs were not run: "
            f"continue with  daxsim sweep {args.sweep_file} --out {out} --resume",
            file=sys.stderr,
        )
    if outcome.interrupted:
        print(
            f"interrupted: continue with  daxsim sweep {args.sweep_file} --out {out} --resume",
            file=sys.stderr,
        )
