"""Sweep figures: one line per design, one panel per memmap placement or hardware profile."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim.plots import variant_color  # noqa: E402
from sim.sweep.plots import choose_panels, choose_x, plot_sweep, sweep_figure  # noqa: E402


def _table() -> pd.DataFrame:
    rows = []
    run = 0
    for clones in (1, 4, 16, 64):
        for variant in ("cow-index", "folio-share"):
            for memmap in ("dram", "pmem"):
                rows.append(
                    {
                        "run": run,
                        "workload.clones": clones,
                        "variant.name": variant,
                        "device.memmap": memmap,
                        "seed_entropy": 1,
                        "churn_per_op": clones * (2.0 if variant == "cow-index" else 1.0),
                        "cycles_per_fault": 1000.0 + (500.0 if memmap == "pmem" else 0.0),
                        "status": "ok",
                        "error": None,
                    }
                )
                run += 1
    rows.append(
        {
            **rows[-1],
            "run": run,
            "status": "failed",
            "error": "boom",
            "churn_per_op": np.nan,
            "cycles_per_fault": np.nan,
        }
    )
    return pd.DataFrame(rows)


def test_swept_factor_and_panels_are_chosen_from_the_factors():
    df = _table()
    assert choose_x(df) == "workload.clones"
    assert choose_panels(df) == ["device.memmap"]


def test_plot_sweep_draws_one_line_per_design_over_ok_runs():
    df = _table()
    ax = plot_sweep(df[df["device.memmap"] == "dram"], x="workload.clones", metric="churn_per_op")
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines] == ["cow-index", "folio-share"]
    assert lines[0].get_color() == variant_color("cow-index")
    assert list(lines[0].get_xdata()) == [1, 4, 16, 64]
    assert list(lines[0].get_ydata()) == [2.0, 8.0, 32.0, 128.0]
    assert ax.get_xscale() == "log"
    plt.close(ax.figure)


def test_sweep_figure_has_one_panel_per_memmap_placement():
    fig = sweep_figure(_table(), x="workload.clones", metric="cycles_per_fault")
    axes = [a for a in fig.axes if a.get_lines()]
    assert [a.get_title() for a in axes] == ["device.memmap = dram", "device.memmap = pmem"]
    assert list(axes[1].get_lines()[0].get_ydata()) == [1500.0] * 4
    plt.close(fig)
