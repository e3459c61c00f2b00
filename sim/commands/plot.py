"""``daxsim plot DIR``: regenerate the plots of a results or sweep directory."""

from __future__ import annotations

from pathlib import Path


def configure(parser) -> None:
    """Add the options of ``daxsim plot`` to ``parser``."""
    parser.add_argument(
        "directory", help="a results directory (from run/compare) or a sweep directory"
    )


def main(args) -> int:
    """Redraw the plots of a results or sweep directory; return the exit status."""
    from sim.errors import InputError

    d = Path(args.directory)
    if (d / "sweep.parquet").exists():
        from sim.sweep.plots import write_sweep_plots

        written = write_sweep_plots(d)
    elif (d / "summary.parquet").exists():
        from sim.report import write_plots

        written = write_plots(d)
        from sim.results.outputs import add_to_mark

        add_to_mark(d, written)  # so that a later --overwrite knows them as daxsim's
    else:
        raise InputError(
            "expected a results directory (summary.parquet) or a sweep directory (sweep.parquet)",
            where=str(d),
        )
    for p in written:
        print(p)
    return 0
