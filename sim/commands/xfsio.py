"""``daxsim xfsio``: run an xfs_io script (xfstests format) on the simulated fsdax filesystem.

::

    daxsim xfsio SCRIPT.xfsio [--variant NAME] [--summary-out F] [--quiet]
    daxsim xfsio -c "open -f a" -c "pwrite -S 0x61 0 64k" -c "md5sum"

Exit status: 0 when every check holds, 1 when one fails (content or model-derived), 2 for a
malformed script (``FILE:LINE: reason``; no summary file is written).
"""

from __future__ import annotations

import json
import os
import sys

from sim.commands._common import add_overwrite_arg
from sim.constants import DEFAULT_DESIGN
from sim.errors import InputError, read_text_input

__all__ = ["configure", "main"]


def configure(parser) -> None:
    """Add the ``xfsio`` arguments to ``parser``."""
    parser.add_argument("script", nargs="?", help="xfs_io script (*.xfsio)")
    parser.add_argument(
        "-c",
        dest="commands",
        action="append",
        default=[],
        metavar="CMD",
        help="an xfs_io command (repeatable, run in order, like xfs_io -c)",
    )
    parser.add_argument(
        "--variant",
        default=DEFAULT_DESIGN,
        help="memmap design variant (default: page-share); see `daxsim variants`",
    )
    parser.add_argument(
        "--no-rmap",
        action="store_true",
        help="filesystem without rmapbt: memory failure uses page->mapping",
    )
    parser.add_argument(
        "--device-size",
        default=None,
        help="device size when @mkfs gives none (xfs_io size syntax, default 4g)",
    )
    parser.add_argument(
        "--stripe-unit",
        default="0",
        metavar="SIZE",
        help="stripe unit of every filesystem (mkfs.xfs -d su=SIZE; xfs_io size syntax): "
        "allocations at EOF of at least SIZE are aligned to it and pwrite writes in -b "
        "buffers; 0 (default) = none, the model the hunt's reproducers come from; 2m = the "
        "real-kernel rig's @mkfs, as daxsim kernel compare runs",
    )
    parser.add_argument(
        "--summary-out", default=None, metavar="F", help="write the run's counters as JSON to F"
    )
    add_overwrite_arg(parser, "an earlier --summary-out file")
    parser.add_argument(
        "--timing",
        action="store_true",
        help="price every operation in CPU cycles and print cycles per operation type",
    )
    parser.add_argument("--profile", default="optane-gen1", help="hardware profile for --timing")
    parser.add_argument(
        "--memmap",
        default="pmem",
        choices=("dram", "pmem"),
        help="where the struct pages live, for --timing (default pmem)",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


#: Keys every ``--summary-out`` file has: an existing file is replaced only if it has them.
SUMMARY_KEYS = ("variant", "generation", "warnings", "residue_pages")


def _write_json(path: str, data: dict) -> None:
    from sim.results.outputs import output_file

    text = (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
    output_file(path, lambda fh: fh.write(text))


def main(args) -> int:
    """Run the script or the ``-c`` commands; return the exit status."""
    from sim.fs.filesystem import metadata_blocks
    from sim.hunt.invariants import runner_invariants
    from sim.runner import resolve_variant
    from sim.xfsio.parse import cvtnum, parse_command, parse_script
    from sim.xfsio.runner import DEFAULT_DEVICE_BYTES, XfsioRunner, stripe_unit_blocks

    variant = resolve_variant(args.variant)
    if bool(args.script) == bool(args.commands):
        raise InputError("give either a SCRIPT or one or more -c commands", where="xfsio")
    if args.summary_out:
        from sim.results.outputs import check_out_file, json_with_keys

        check_out_file(
            args.summary_out,
            "--summary-out",
            overwrite=args.overwrite,
            ours=json_with_keys(*SUMMARY_KEYS),
        )
    device = DEFAULT_DEVICE_BYTES
    if args.device_size is not None:
        try:
            device = cvtnum(args.device_size)
        except ValueError as exc:
            raise InputError(str(exc), where="--device-size") from None
        if device < 4096:
            raise InputError("device must hold at least one block", where="--device-size")
        from sim.memmap.memmap import MAX_ARRAY_BYTES, memmap_bytes

        if memmap_bytes(device // 4096) > MAX_ARRAY_BYTES:
            raise InputError(
                f"a device of {device:,} bytes needs {memmap_bytes(device // 4096):,} bytes of "
                f"struct-page arrays (16 per 4 KiB page, mapped lazily); the limit is "
                f"{MAX_ARRAY_BYTES:,} bytes of address space (a {MAX_ARRAY_BYTES // 16 * 4096:,}"
                "-byte device)",
                where="--device-size",
            )
    try:
        su_bytes = cvtnum(args.stripe_unit)
    except ValueError as exc:
        raise InputError(str(exc), where="--stripe-unit") from None
    su_blocks = stripe_unit_blocks(su_bytes, "--stripe-unit")
    if su_blocks and metadata_blocks(su_blocks) >= device // 4096:
        raise InputError(
            f"a stripe unit of {su_bytes} bytes leaves no data block on a {device}-byte device",
            where="--stripe-unit",
        )
    if args.script:
        fname = args.script
        text = read_text_input(fname, "script")
        cmds = parse_script(text, os.path.basename(fname))
        label = os.path.basename(fname)
    else:
        label = "-c"
        cmds = []
        for i, c in enumerate(args.commands, start=1):
            cmd = parse_command(c, "-c", i)
            if cmd is not None:
                cmds.append(cmd)
    records: list = []
    model = None
    if args.timing:  # check the profile before running anything
        from sim.timing import load_profile
        from sim.timing.cost import CostModel

        model = CostModel(load_profile(args.profile), memmap=args.memmap)
    runner = XfsioRunner(
        variant,
        rmap=not args.no_rmap,
        device_bytes=device,
        filename=label,
        record_hook=records.append if args.timing else None,
        invariants=runner_invariants(),
        stripe_unit_bytes=su_bytes,
    )
    runner.run(cmds)
    res = runner.result
    summary = runner.summary()
    timing_lines: list[str] = []
    if model is not None:
        import numpy as np

        cycles = (
            np.asarray(model.price_many(records), dtype=np.int64)
            if records
            else np.zeros(0, np.int64)
        )
        by_op: dict[str, list[int]] = {}
        for r, c in zip(records, cycles.tolist(), strict=True):
            by_op.setdefault(r.op, []).append(c)
        summary["timing"] = {
            "profile": args.profile,
            "memmap": args.memmap,
            "cycles_total": int(cycles.sum()),
            "ns_total": float(model.profile.cycles_to_ns(int(cycles.sum()))),
            "by_op": {
                op: {
                    "count": len(v),
                    "cycles_mean": float(np.mean(v)),
                    "cycles_total": int(np.sum(v)),
                }
                for op, v in sorted(by_op.items())
            },
        }
        timing_lines.append(
            f"timing on {args.profile} (memmap {args.memmap}): "
            f"{int(cycles.sum()):,} cycles = {summary['timing']['ns_total'] / 1e3:,.1f} us"
        )
        for op, v in sorted(by_op.items()):
            mean = float(np.mean(v))
            timing_lines.append(
                f"  {op:16s} {len(v):8d} ops  {mean:12,.0f} cycles/op  "
                f"{float(model.profile.cycles_to_ns(mean)):10,.0f} ns/op"
            )
    if not args.quiet:
        if args.commands:  # interactive use: what xfs_io would print
            for line in runner.output:
                print(line)
        for c in res.failed + res.model_failed:
            print(c.describe(label))
        n = res.counts()
        print(
            f"{label}: variant {summary['variant']} (v{summary['generation']} paths): "
            f"{n['checks_passed']} checks passed, {n['checks_failed']} failed; "
            f"model-derived {n['model_checks_passed']} passed, "
            f"{n['model_checks_failed']} failed; "
            f"warnings {summary['warnings']}, residue {summary['residue_pages']}, "
            f"phantoms {summary['phantom_pages']}, CoW pages {summary['cow_pages']}"
        )
        for line in timing_lines:
            print(line)
    if args.summary_out:
        _write_json(args.summary_out, summary)
    sys.stdout.flush()
    return 0 if res.ok else 1
