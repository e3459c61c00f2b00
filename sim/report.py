"""Reports of a results directory: the printed summary table and the standard plots."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from sim import plots

__all__ = ["load_results", "write_plots", "summary_table", "MAIN_PLOT"]

#: The figure the README shows: one panel per question the default scenario answers.
MAIN_PLOT = "overview.png"

_TABLE_COLUMNS = [
    ("variant", "variant"),
    ("profile", "profile"),
    ("operations", "ops"),
    ("op_errors", "failed"),
    ("churn_per_op", "churn/op"),
    ("struct_page_lines_per_op", "sp lines/op"),
    ("struct_page_cycles_per_op", "sp cycles/op"),
    ("share_inc", "share+"),
    ("share_dec", "share-"),
    ("warnings_raw", "warn raw"),
    ("warnings_latched", "warn latched"),
    ("residue_pages", "residue"),
    ("phantom_pages", "phantom"),
    ("pmd_sigbus", "SIGBUS"),
    ("share_degree_max", "max share"),
    ("cow_pages", "CoW pages"),
    ("cycles_per_fault", "cycles/fault"),
]


def load_results(path: str | Path) -> dict[str, pd.DataFrame]:
    """Load every table of a results directory (one ``pd.read_parquet`` each)."""
    path = Path(path)
    out = {}
    for name in ("summary", "timeseries", "latency", "pages", "memory_failure"):
        f = path / f"{name}.parquet"
        if f.exists():
            out[name] = pd.read_parquet(f)
    return out


def summary_table(summary: pd.DataFrame) -> str:
    """A short fixed-width table of the headline metrics, one line per run."""
    cols = [(c, h) for c, h in _TABLE_COLUMNS if c in summary]
    df = summary[[c for c, _ in cols]].copy()
    df.columns = [h for _, h in cols]
    for h, fmt in (
        ("churn/op", "{:,.2f}"),
        ("sp lines/op", "{:,.2f}"),
        ("sp cycles/op", "{:,.0f}"),
        ("cycles/fault", "{:,.0f}"),
    ):
        if h in df:
            df[h] = df[h].map(fmt.format)
    return df.to_string(index=False)


def _scenario_name(result_dir: Path) -> str:
    import json

    try:
        m = json.loads((result_dir / "manifest.json").read_text())
        return str(m.get("scenario_name") or result_dir.name)
    except (OSError, ValueError):
        return result_dir.name


def write_plots(result_dir: str | Path) -> list[Path]:
    """Draw the standard figures of a results directory into ``<dir>/plots/``."""
    result_dir = Path(result_dir)
    t = load_results(result_dir)
    out_dir = result_dir / "plots"
    out_dir.mkdir(exist_ok=True)
    written: list[Path] = []

    def save(fig, name):
        import io

        from sim.results.outputs import output_file

        p = out_dir / name
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        output_file(p, lambda fh: fh.write(buf.getbuffer()))  # never a half-drawn figure
        written.append(p)

    s, ts, lat, pg = t["summary"], t["timeseries"], t["latency"], t["pages"]
    fig, axes = plt.subplots(2, 3, figsize=(17, 9.5), layout="constrained")
    plots.plot_churn(s, ax=axes[0, 0])
    plots.plot_warnings(s, ax=axes[0, 1])
    plots.plot_stale_pages_over_time(ts, ax=axes[0, 2])
    plots.plot_share_degree(pg, ax=axes[1, 0])
    if len(lat):
        plots.plot_latency_cdf(
            lat[lat["op"].isin(["read_fault", "write_fault", "cow_fault"])], ax=axes[1, 1]
        )
        plots.plot_cycles_per_op(lat, ax=axes[1, 2])
    name = _scenario_name(result_dir)
    fig.suptitle(f"daxsim: {name}")
    save(fig, MAIN_PLOT)
    for fn, fname in (
        (plots.plot_churn, "churn.png"),
        (plots.plot_warnings, "warnings.png"),
        (plots.plot_memory_failure_owners, "memory_failure_owners.png"),
    ):
        if (
            fn is plots.plot_memory_failure_owners
            and s.get("mf_poisoned_pages", pd.Series([0])).sum() == 0
        ):
            continue
        ax = fn(s)
        save(ax.figure, fname)
    ax = plots.plot_stale_pages_over_time(ts)
    save(ax.figure, "stale_pages.png")
    ax = plots.plot_share_degree(pg)
    save(ax.figure, "share_degree.png")
    if len(lat):
        ax = plots.plot_latency_cdf(lat)
        save(ax.figure, "latency_cdf.png")
        ax = plots.plot_cycles_per_op(lat)
        save(ax.figure, "cycles_per_op.png")
    return written
