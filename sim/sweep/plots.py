"""The figures of a sweep: a metric against the swept factor, one line per design.

:func:`plot_sweep` draws one panel; :func:`sweep_figure` makes one panel per hardware profile
or memmap placement (whichever the sweep varies); :func:`write_sweep_plots` writes the standard
figures of a sweep directory (``daxsim plot SWEEP_DIR``): struct-page churn per operation and
CPU cycles per fault against the swept factor.

Runs that failed are left out; when other factors vary too, each point is their mean.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sim.plots import variant_color  # noqa: E402

__all__ = [
    "SWEEP_METRICS",
    "metric_values",
    "plot_sweep",
    "sweep_figure",
    "write_sweep_plots",
    "choose_x",
    "choose_panels",
]

#: Struct-page counters that make up "churn" (see sim.plots.plot_churn).
CHURN_COUNTERS = ("share_inc", "share_dec", "flag_set", "flag_clear", "owner_overwritten")
#: Factor keys that split a sweep into panels, in preference order.
PANEL_KEYS = ("hardware.profile", "device.memmap")
#: Columns naming the design variant of a row, in preference order.
VARIANT_KEYS = ("variant.name", "variant")


def _churn_per_op(df: pd.DataFrame) -> pd.Series | None:
    for col in ("churn_per_op", "churn_per_operation"):
        if col in df:
            return df[col].astype(np.float64)
    counters = [c for c in CHURN_COUNTERS if c in df]
    ops = next((c for c in ("operations", "ops", "n_operations") if c in df), None)
    if not counters or ops is None:
        return None
    total = df[counters].astype(np.float64).sum(axis=1)
    return total / df[ops].astype(np.float64).clip(lower=1)


def _cycles_per_fault(df: pd.DataFrame) -> pd.Series | None:
    for col in (
        "cycles_per_fault",
        "fault_cycles_mean",
        "mean_fault_cycles",
        "fault_latency_cycles_mean",
    ):
        if col in df:
            return df[col].astype(np.float64)
    total = next(
        (c for c in ("fault_cycles", "fault_cycles_total", "cycles_faults") if c in df), None
    )
    faults = next((c for c in ("faults", "fault_count", "n_faults") if c in df), None)
    if total is None or faults is None:
        return None
    return df[total].astype(np.float64) / df[faults].astype(np.float64).clip(lower=1)


#: Derived metrics: name -> (axis label, function of the table returning a Series or None).
SWEEP_METRICS: dict[str, tuple[str, Callable[[pd.DataFrame], pd.Series | None]]] = {
    "churn_per_op": ("struct-page updates per operation", _churn_per_op),
    "cycles_per_fault": ("CPU cycles per fault (mean)", _cycles_per_fault),
}


def metric_values(df: pd.DataFrame, metric: str) -> pd.Series | None:
    """The values of ``metric``: a derived metric of :data:`SWEEP_METRICS` or a column."""
    if metric in SWEEP_METRICS:
        return SWEEP_METRICS[metric][1](df)
    if metric in df:
        return pd.to_numeric(df[metric], errors="coerce").astype(np.float64)
    return None


def _variant_column(df: pd.DataFrame) -> str | None:
    return next((c for c in VARIANT_KEYS if c in df), None)


def _factor_columns(df: pd.DataFrame) -> list[str]:
    """Columns between ``run`` and ``seed_entropy``: the factors, in sweep order."""
    cols = list(df.columns)
    if "run" in cols and "seed_entropy" in cols:
        return cols[cols.index("run") + 1 : cols.index("seed_entropy")]
    return [c for c in cols if "." in c]


def choose_x(df: pd.DataFrame) -> str | None:
    """The swept factor to put on the x axis: the first varying numeric factor that is not the
    design or a panel key, else the first varying such factor of any type."""
    candidates = [
        c
        for c in _factor_columns(df)
        if c not in VARIANT_KEYS and c not in PANEL_KEYS and df[c].nunique(dropna=True) > 1
    ]
    numeric = [c for c in candidates if pd.api.types.is_numeric_dtype(df[c])]
    return (numeric or candidates or [None])[0]


def choose_panels(df: pd.DataFrame) -> list[str]:
    """The factors that make panels: those of :data:`PANEL_KEYS` the sweep varies."""
    return [c for c in PANEL_KEYS if c in df and df[c].nunique(dropna=True) > 1]


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] == "ok"] if "status" in df else df


def plot_sweep(df: pd.DataFrame, *, x: str, metric: str, ax: Axes | None = None) -> Axes:
    """A metric against a swept factor, one line per design variant.

    Parameters
    ----------
    df : DataFrame
        A sweep table (``sweep.parquet``), or a subset of it (one panel). Failed rows are
        ignored; rows with equal ``x`` and variant are averaged.
    x : str
        The factor column for the x axis (e.g. ``"workload.clones"``).
    metric : str
        A derived metric (``"churn_per_op"``, ``"cycles_per_fault"``) or a metric column.
    ax : Axes, optional
        Where to draw; default a new figure.

    Returns
    -------
    Axes
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    data = _ok(df)
    values = metric_values(data, metric)
    label = SWEEP_METRICS[metric][0] if metric in SWEEP_METRICS else metric
    if values is None:
        raise KeyError(f"the sweep table has no column for metric {metric!r}")
    vcol = _variant_column(data)
    frame = pd.DataFrame(
        {
            "x": data[x].to_numpy(),
            "y": values.to_numpy(),
            "variant": data[vcol].astype(str).to_numpy() if vcol else "all runs",
        }
    )
    numeric_x = pd.api.types.is_numeric_dtype(data[x])
    categories = list(dict.fromkeys(data[x].astype(str))) if not numeric_x else None
    for variant, g in frame.groupby("variant", sort=False):
        mean = g.groupby("x", sort=True)["y"].mean()
        xs = mean.index.to_numpy()
        xs = (
            xs.astype(np.float64) if numeric_x else np.array([categories.index(str(v)) for v in xs])
        )
        ax.plot(
            xs, mean.to_numpy(), marker="o", color=variant_color(str(variant)), label=str(variant)
        )
    if numeric_x:
        xv = np.unique(data[x].to_numpy(dtype=np.float64))
        if len(xv) and xv.min() > 0 and xv.max() / xv.min() >= 16:
            ax.set_xscale("log", base=2)
        if 0 < len(xv) <= 12:
            ax.set_xticks(xv, [f"{v:g}" for v in xv])
            ax.minorticks_off()
    else:
        ax.set_xticks(range(len(categories)), categories, rotation=20, ha="right")
    _scale_y(ax, frame["y"].to_numpy(dtype=np.float64))
    ax.set_xlabel(x)
    ax.set_ylabel(label)
    if len(frame):
        ax.legend(fontsize="small", title="design")
    return ax


def _scale_y(ax: Axes, y: np.ndarray) -> None:
    """Log scale when the values span more than two decades (symlog when some are 0)."""
    y = y[np.isfinite(y)]
    pos = y[y > 0]
    if len(pos) == 0 or (y < 0).any() or pos.max() / pos.min() < 100:
        return
    if (y == 0).any():
        ax.set_yscale("symlog", linthresh=float(pos.min()))
    else:
        ax.set_yscale("log")


def sweep_figure(
    df: pd.DataFrame, *, x: str, metric: str, panels: list[str] | None = None
) -> Figure:
    """One :func:`plot_sweep` panel per value of the panel factors.

    ``panels`` defaults to :func:`choose_panels` (hardware profile and/or memmap placement).
    """
    panels = choose_panels(df) if panels is None else panels
    groups = list(_ok(df).groupby(panels, sort=False)) if panels else [((), _ok(df))]
    n = max(1, len(groups))
    fig, axes = plt.subplots(
        1, n, figsize=(4.8 * n, 4.0), layout="constrained", sharey=True, squeeze=False
    )
    for ax, (key, sub) in zip(axes[0], groups, strict=False):
        plot_sweep(sub, x=x, metric=metric, ax=ax)
        key = key if isinstance(key, tuple) else (key,)
        if panels:
            ax.set_title(", ".join(f"{p} = {v}" for p, v in zip(panels, key, strict=True)))
    label = SWEEP_METRICS[metric][0] if metric in SWEEP_METRICS else metric
    fig.suptitle(f"{label} against {x}")
    return fig


def write_sweep_plots(
    sweep_dir: str | os.PathLike, *, table: pd.DataFrame | None = None
) -> list[Path]:
    """Write the standard figures of a sweep to ``SWEEP_DIR/plots/``; returns the files written.

    Figures whose metric the runs do not report (e.g. cycles in functional mode) are skipped.
    """
    from sim.results.store import atomic_write_bytes

    sweep_dir = Path(sweep_dir)
    df = pd.read_parquet(sweep_dir / "sweep.parquet") if table is None else table
    ok = _ok(df)
    x = choose_x(ok)
    written: list[Path] = []
    if x is None or ok.empty:
        return written
    for metric in SWEEP_METRICS:
        values = metric_values(ok, metric)
        if values is None or not np.isfinite(values.to_numpy(dtype=np.float64)).any():
            continue
        fig = sweep_figure(ok, x=x, metric=metric)
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        path = sweep_dir / "plots" / f"sweep-{metric}.png"
        atomic_write_bytes(path, buf.getvalue())
        written.append(path)
    return written
