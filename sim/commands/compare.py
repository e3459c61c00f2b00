"""``daxsim compare``: one operation stream under several design variants (and profiles)."""

from __future__ import annotations

from pathlib import Path

from sim.commands._common import (
    add_scenario_args,
    check_out_dir,
    default_out_dir,
    parse_list,
    report_failed_ops,
    show_progress,
)


def kernel_variants() -> str:
    """The registered designs a released kernel has, comma-separated (the default set)."""
    from sim.memmap import VARIANTS

    return ",".join(v.name for v in VARIANTS.values() if v.in_kernel)


def configure(parser) -> None:
    """Add the options of ``daxsim compare`` to ``parser``."""
    add_scenario_args(parser)
    default = kernel_variants()
    parser.add_argument(
        "--variants",
        default=default,
        metavar="A,B,C",
        help=f"design variants to compare (default: the kernel designs, {default})",
    )
    parser.add_argument(
        "--profiles",
        default=None,
        metavar="P,Q",
        help="hardware profiles to compare as well (default: the scenario's)",
    )


def main(args) -> int:
    """Run the scenario once per variant and write the comparison; return the exit status."""
    import pandas as pd

    from sim.errors import InputError
    from sim.report import MAIN_PLOT, summary_table
    from sim.runner import check_variant, make_stream, simulate, write_results
    from sim.scenario import load_scenario

    scenario = load_scenario(args.scenario, args.overrides)
    variants = [check_variant(v) for v in parse_list(args.variants)]
    if not variants:
        raise InputError("expected at least one variant", where="--variants")
    profiles = parse_list(args.profiles) or [scenario.hardware.profile]
    for p in profiles:  # check every name before running anything
        scenario.with_overrides({"hardware.profile": p}, where="--profiles")
    out_dir = Path(args.out) if args.out else default_out_dir(scenario.name, "compare")
    check_out_dir(out_dir, "--out", kind="results", overwrite=args.overwrite)
    stream, _meta = make_stream(scenario)
    outs = []
    for p in profiles:
        for v in variants:
            outs.append(
                simulate(
                    scenario,
                    variant=v,
                    profile=p,
                    stream=stream,
                    progress=show_progress(args.quiet),
                )
            )
    write_results(
        out_dir,
        outs,
        scenario,
        seed=scenario.run.seed,
        plots=bool(scenario.output.plots),
        overwrite=args.overwrite,
        extra_manifest={"compare": {"variants": variants, "profiles": profiles}},
    )
    if not args.quiet:
        print(
            f"scenario {scenario.name}: the same {len(stream):,}-operation stream under "
            f"{len(variants)} designs x {len(profiles)} profile(s)"
        )
        print(summary_table(pd.DataFrame([o.summary for o in outs])))
        print(f"\nresults: {out_dir}/")
        if scenario.output.plots:
            print(f"plots:   {out_dir}/plots/{MAIN_PLOT} (and the single figures beside it)")
    return report_failed_ops("compare", scenario, outs)
