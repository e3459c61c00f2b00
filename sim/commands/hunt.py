"""``daxsim hunt``: search designs for defects and shrink each to a minimal xfs_io reproducer.

::

    daxsim hunt --variant NAME [--seed S] [--budget OPS | --time SECONDS] [--ops LIST]
                [--files N] [--workers N] [--out DIR] [--quiet]
    daxsim hunt --all-variants ...
    daxsim hunt ... --confirm

``NAME`` is a design name or alias, ``module:Class`` or ``path/to/file.py:Class`` (a
``sim.memmap.Variant`` subclass; repeat ``--variant`` to hunt several). For every design it
prints one explanation per broken invariant, writes ``OUT/<design>-<invariant>.xfsio`` and at
the end the table (one row per design, one column per invariant) and ``OUT/hunt.parquet``.
``--workers N`` runs the search's episodes in N processes; with an op budget the findings,
their reproducers and the table are the same for any N (episodes are merged in order).
``--confirm`` replays every finding of a built-in design on a cached kernel that runs it
(one boot per kernel, :mod:`sim.hunt.confirm`) and adds what the kernel showed to the table
(a last column) and to ``hunt.parquet`` (``confirmation``, ``kernel``, ``kernel_evidence``).
Exit status 0 when the hunt ran (violations are findings, not errors), 2 for bad input.
"""

from __future__ import annotations

import sys

from sim.commands._common import (
    add_overwrite_arg,
    check_out_dir,
    default_out_dir,
    show_progress,
)
from sim.errors import InputError

__all__ = ["configure", "main"]


def configure(parser) -> None:
    """Add the ``hunt`` arguments to ``parser``."""
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME",
        help="design to hunt (name, alias, module:Class or file.py:Class); repeatable",
    )
    parser.add_argument(
        "--all-variants",
        action="store_true",
        help="hunt every registered design (plus any --variant given)",
    )
    parser.add_argument("--seed", type=int, default=0, help="SeedSequence entropy (default 0)")
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        metavar="OPS",
        help="checked file-level operations per design (default 2000 unless --time is given)",
    )
    parser.add_argument(
        "--time", type=float, default=None, metavar="SECONDS", help="wall-time budget per design"
    )
    parser.add_argument(
        "--ops",
        default=None,
        metavar="LIST",
        help="comma-separated op kinds to draw from: pwrite, truncate, punch, "
        "zero, unshare, clone, dedupe, mread, mwrite, hwpoison, munmap, unlink "
        "(aliases: read, write, reflink, memory_failure, ...)",
    )
    parser.add_argument(
        "--files",
        type=int,
        default=3,
        metavar="N",
        help="files the operations range over (default 3)",
    )
    parser.add_argument(
        "--episode-len",
        type=int,
        default=24,
        metavar="OPS",
        help="random ops per episode before every file is unlinked (default 24)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes running the search's episodes (default 1); with --budget "
        "the result is the same for any N",
    )
    parser.add_argument(
        "--engine",
        choices=("auto", "compiled", "python"),
        default="auto",
        help="where episodes run first: the compiled engine (built-in designs; "
        "an episode it cannot vouch for reruns in Python, so findings are the "
        "same) or the Python stack only; auto: compiled when it applies "
        "(default)",
    )
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="output directory (default results/hunt-<UTC timestamp>)",
    )
    parser.add_argument(
        "--confirm",
        action="store_true",
        help="replay every finding of a built-in design on a cached kernel of that design "
        "(daxsim kernel fetch; one boot per kernel) and report whether it reproduces",
    )
    add_overwrite_arg(parser)
    parser.add_argument("--quiet", action="store_true", help="print only the table")


def main(args) -> int:
    """Run the hunt; return the exit status."""
    from sim.hunt.report import format_table, results_frame, write_parquet
    from sim.hunt.search import parse_ops
    from sim.memmap import VARIANTS, get_variant

    specs = list(VARIANTS) if args.all_variants else []
    specs += [v for v in args.variant if v not in specs]
    if not specs:
        raise InputError("give --variant NAME or --all-variants", where="hunt")
    for s in specs:
        get_variant(s)  # fail early, before any output
    kinds = parse_ops(args.ops)
    if args.budget is not None and args.budget < 1:
        raise InputError(f"expected a positive number of ops, got {args.budget}", where="--budget")
    if args.time is not None and args.time <= 0:
        raise InputError(f"expected a positive number of seconds, got {args.time}", where="--time")
    if args.seed < 0:
        raise InputError(f"expected a non-negative integer, got {args.seed}", where="--seed")
    if args.files < 1:
        raise InputError(f"expected at least one file, got {args.files}", where="--files")
    if args.workers < 1:
        raise InputError(f"expected at least one worker, got {args.workers}", where="--workers")
    if "pwrite" not in kinds:
        raise InputError(
            "the op kinds must include pwrite (the only op that creates a file)", where="--ops"
        )
    if args.episode_len < 1:
        raise InputError(f"expected at least one op, got {args.episode_len}", where="--episode-len")
    budget = args.budget if (args.budget is not None or args.time is not None) else 2000
    out = str(args.out or default_out_dir("hunt"))
    check_out_dir(out, "--out", kind="hunt", overwrite=args.overwrite)
    from sim.results.outputs import output_dir

    # Everything goes to a temporary directory renamed to OUT at the end; the paths printed
    # and recorded are those the files have then.
    with output_dir(out, kind="hunt", overwrite=args.overwrite) as tmp:
        rows = _hunt_into(args, specs, kinds, budget, str(tmp), out)
        if args.confirm:
            rows = _confirm(rows, args, str(tmp), out)
        df = results_frame(rows)
        print(format_table(rows))
        write_parquet(df, str(tmp / "hunt.parquet"))
    if not args.quiet:
        print(f"wrote {out}/hunt.parquet")
    sys.stdout.flush()
    return 0


def _confirm(rows, args, tmp: str, out: str) -> list:
    """Replay the findings on kernels of their designs (reproducers are still in ``tmp``)."""
    import dataclasses
    import tempfile

    from sim.hunt.confirm import confirm_rows

    say = None if args.quiet else (lambda s: print(s, flush=True))
    real = [dataclasses.replace(r, reproducer=r.reproducer.replace(out, tmp)) for r in rows]
    with tempfile.TemporaryDirectory(prefix="daxsim-confirm-") as work:
        conf = confirm_rows(real, work_dir=work, say=say)
    return [
        dataclasses.replace(r, confirmation=c.status, kernel=c.kernel, kernel_evidence=c.evidence)
        for r, c in zip(rows, conf, strict=True)
    ]


def _hunt_into(args, specs, kinds, budget, tmp: str, out: str) -> list:
    """Hunt every design of ``specs``, writing reproducers into ``tmp`` (to become ``out``)."""
    import dataclasses

    from sim.hunt.report import hunt_and_shrink

    def final(text: str) -> str:
        return text.replace(tmp, out)

    say = None if args.quiet else (lambda s: print(final(s), flush=True))
    rows = []
    for spec in specs:
        bar = None
        if show_progress(args.quiet) and budget:
            from tqdm import tqdm

            bar = tqdm(total=budget, desc=str(spec), unit="op", leave=False)
        prog = (lambda n, b=bar: b.update(n - b.n)) if bar is not None else None
        res, r = hunt_and_shrink(
            spec,
            out_dir=tmp,
            seed=args.seed,
            budget_ops=budget,
            time_s=args.time,
            kinds=kinds,
            nfiles=args.files,
            episode_len=args.episode_len,
            say=say,
            progress=prog,
            workers=args.workers,
            compiled={"auto": None, "compiled": True, "python": False}[args.engine],
        )
        if bar is not None:
            bar.close()
        if say is not None:
            say(
                f"{res.variant}: {res.ops_run} checked ops in {res.episodes} episodes "
                f"({res.episodes_python} on the Python stack), {res.seconds:.1f} s "
                f"({res.ops_run / max(res.seconds, 1e-9):.0f} ops/s)"
            )
        rows += [dataclasses.replace(x, reproducer=final(x.reproducer)) for x in r]
    return rows
