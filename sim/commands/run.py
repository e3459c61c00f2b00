"""``daxsim run``: run one scenario and write a results directory."""

from __future__ import annotations

from pathlib import Path

from sim.commands._common import (
    add_scenario_args,
    check_out_dir,
    default_out_dir,
    report_failed_ops,
    show_progress,
)


def configure(parser) -> None:
    """Add the options of ``daxsim run`` to ``parser``."""
    add_scenario_args(parser)


def main(args) -> int:
    """Simulate the scenario and write its results; return the exit status."""
    from sim.report import MAIN_PLOT, summary_table
    from sim.runner import simulate, write_results
    from sim.scenario import load_scenario

    scenario = load_scenario(args.scenario, args.overrides)
    out_dir = Path(args.out) if args.out else default_out_dir(scenario.name)
    check_out_dir(out_dir, "--out", kind="results", overwrite=args.overwrite)
    out = simulate(scenario, progress=show_progress(args.quiet))
    write_results(
        out_dir,
        [out],
        scenario,
        seed=scenario.run.seed,
        plots=bool(scenario.output.plots),
        overwrite=args.overwrite,
    )
    if not args.quiet:
        import pandas as pd

        print(
            f"scenario {scenario.name}: {scenario.description}"
            if scenario.description
            else f"scenario {scenario.name}"
        )
        print(summary_table(pd.DataFrame([out.summary])))
        print(
            f"\nresults: {out_dir}/ (summary, timeseries, latency, pages .parquet; manifest.json)"
        )
        if scenario.output.plots:
            print(f"plots:   {out_dir}/plots/ (main figure: {MAIN_PLOT})")
    return report_failed_ops("run", scenario, [out])
