"""The figures of ``compare --profiles P,Q``: one line per (design, profile) run, never two
runs joined into one; bars labelled with the profile; whole-number share-degree ticks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim import plots

VARIANTS = ["cow-index", "folio-share"]
PROFILES = ["optane-gen1", "dram"]
RUNS = [(v, p) for p in PROFILES for v in VARIANTS]


def _timeseries() -> pd.DataFrame:
    rows = []
    for k, (v, p) in enumerate(RUNS):
        for i in range(1, 6):
            rows.append(
                {"variant": v, "profile": p, "op_index": 100 * i, "residue_pages": k * i,
                 "phantom_pages": 0}
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_each_run_is_its_own_line_starting_at_its_own_first_point():
    ax = plots.plot_stale_pages_over_time(_timeseries())
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert len(lines) == 2 * len(RUNS)
    for v, p in RUNS:
        x = lines[f"{v} / {p} residue"].get_xdata()
        assert list(x) == [100, 200, 300, 400, 500]  # not continued by another run's points


def test_bars_name_the_profile_and_share_degree_ticks_are_whole():
    summary = pd.DataFrame(
        [{"variant": v, "profile": p, "operations": 10, "share_inc": 3, "share_dec": 1,
          "warnings_raw": 1, "warnings_latched": 1} for v, p in RUNS]
    )  # fmt: skip
    ax = plots.plot_churn(summary)
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"{v} / {p}" for v, p in RUNS]
    pages = pd.DataFrame(
        [{"variant": v, "profile": p, "kind": "shared", "share_degree": d, "pages": 5}
         for v, p in RUNS for d in (2, 3)]
    )  # fmt: skip
    ax = plots.plot_share_degree(pages)
    ax.figure.canvas.draw()
    ticks = ax.get_xticks()
    assert np.allclose(ticks, np.round(ticks))
    assert ax.get_legend_handles_labels()[1] == [f"{v} / {p}" for v, p in RUNS]


def test_one_profile_keeps_the_plain_design_names():
    summary = pd.DataFrame(
        [{"variant": v, "profile": "dram", "operations": 1, "share_inc": 1} for v in VARIANTS]
    )
    ax = plots.plot_churn(summary)
    assert [t.get_text() for t in ax.get_xticklabels()] == VARIANTS
