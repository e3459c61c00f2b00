"""Plots of daxsim results. Every function takes tidy DataFrames and returns a matplotlib Axes.

Functions take ``ax=None`` (a new figure with ``layout="constrained"`` is made) and never call
``plt.show()``. One colour per design variant, the same in every figure (:data:`VARIANT_COLORS`).
Units are in the axis labels.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from sim.constants import (  # noqa: E402
    COW_INDEX,
    FOLIO_SHARE,
    FOLIO_SHARE_RESET,
    PAGE_SHARE,
    SINGLE_OWNER,
)

__all__ = [
    "VARIANT_COLORS",
    "variant_color",
    "plot_churn",
    "plot_warnings",
    "plot_stale_pages_over_time",
    "plot_share_degree",
    "plot_latency_cdf",
    "plot_memory_failure_owners",
    "plot_cycles_per_op",
]

#: A fixed colour per design variant (tab10), so figures can be compared side by side.
VARIANT_COLORS = {
    SINGLE_OWNER: "#7f7f7f",
    COW_INDEX: "#d62728",
    PAGE_SHARE: "#2ca02c",
    FOLIO_SHARE: "#1f77b4",
    FOLIO_SHARE_RESET: "#9467bd",
}


def variant_color(name: str) -> str:
    """The colour of a variant; user-defined variants get a stable colour from their name."""
    if name in VARIANT_COLORS:
        return VARIANT_COLORS[name]
    palette = plt.get_cmap("tab10").colors
    return matplotlib.colors.to_hex(palette[sum(map(ord, name)) % len(palette)])


def _ax(ax: Axes | None, figsize=(6.4, 4.0)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _runs(df: pd.DataFrame) -> list[str]:
    """The column of run names a figure uses, one per row of ``df``: the variant, and
    ``variant / profile`` when ``df`` holds more than one profile (``compare --profiles``)."""
    if "profile" in df and df["profile"].nunique() > 1:
        return [f"{v} / {p}" for v, p in zip(df["variant"], df["profile"], strict=True)]
    return [str(v) for v in df["variant"]]


def _by_run(df: pd.DataFrame):
    """``(run name, variant, rows)`` per run of ``df``, in order (see :func:`_runs`)."""
    names = pd.Series(_runs(df), index=df.index)
    for name in dict.fromkeys(names):
        g = df[names == name]
        yield name, str(g["variant"].iloc[0]), g


def _legend(ax: Axes, **kw) -> None:
    """A legend only when something is labelled (an empty run draws no lines)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", **kw)


def plot_churn(summary: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Struct-page churn per file-level operation, one bar group per variant.

    Parameters
    ----------
    summary : DataFrame
        One row per run with columns ``variant``, ``operations``, ``share_inc``,
        ``share_dec``, ``flag_set``, ``flag_clear``, ``owner_overwritten``.
    """
    ax = _ax(ax)
    kinds = [
        c
        for c in ("share_inc", "share_dec", "flag_set", "flag_clear", "owner_overwritten")
        if c in summary
    ]
    x = np.arange(len(summary))
    width = 0.8 / max(len(kinds), 1)
    ops = summary["operations"].clip(lower=1).to_numpy(dtype=np.float64)
    hatches = ["", "//", "..", "xx", "\\\\"]
    for i, k in enumerate(kinds):
        ax.bar(
            x + (i - (len(kinds) - 1) / 2) * width,
            summary[k].to_numpy(dtype=np.float64) / ops,
            width,
            color=[variant_color(v) for v in summary["variant"]],
            hatch=hatches[i % len(hatches)],
            edgecolor="black",
            linewidth=0.4,
            label=k,
        )
    ax.set_xticks(x, _runs(summary), rotation=20, ha="right")
    ax.set_ylabel("struct-page updates per operation")
    ax.set_title("Refcount churn by design")
    _legend(ax, title="hatch = counter")
    return ax


def plot_warnings(summary: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """WARN conditions that held (raw, log scale) and sites that printed (latched), per variant.

    Parameters
    ----------
    summary : DataFrame
        Columns ``variant``, ``warnings_raw``, ``warnings_latched``.
    """
    ax = _ax(ax)
    x = np.arange(len(summary))
    colors = [variant_color(v) for v in summary["variant"]]
    ax.bar(
        x - 0.2,
        summary["warnings_raw"],
        0.4,
        color=colors,
        edgecolor="black",
        label="raw (every time)",
    )
    ax.bar(
        x + 0.2,
        summary["warnings_latched"],
        0.4,
        color=colors,
        hatch="//",
        edgecolor="black",
        label="latched (WARN_ON_ONCE sites)",
    )
    ax.set_yscale("symlog")
    ax.set_xticks(x, _runs(summary), rotation=20, ha="right")
    ax.set_ylabel("warnings (count)")
    ax.set_title("Kernel WARN sites hit")
    _legend(ax)
    return ax


def plot_stale_pages_over_time(timeseries: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Residue pages (flag with count 0) and phantom pages (stale folio share) over the run.

    Parameters
    ----------
    timeseries : DataFrame
        Columns ``variant``, ``op_index``, ``residue_pages``, ``phantom_pages``.
    """
    ax = _ax(ax)
    for name, variant, g in _by_run(timeseries):  # one line per run, never two joined
        c = variant_color(variant)
        ax.plot(g["op_index"], g["residue_pages"], color=c, label=f"{name} residue")
        ax.plot(g["op_index"], g["phantom_pages"], color=c, linestyle="--", label=f"{name} phantom")
    ax.set_xlabel("file-level operations applied")
    ax.set_ylabel("pages with stale sharing state")
    ax.set_title("Stale struct-page state over the run")
    _legend(ax, ncols=2)
    return ax


def plot_share_degree(pages: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Distribution of the share count over shared pages at the end of the run.

    Parameters
    ----------
    pages : DataFrame
        Columns ``variant``, ``kind`` (``"shared"`` rows are plotted), ``share_degree``, ``pages``.
    """
    ax = _ax(ax)
    shared = pages[pages["kind"] == "shared"]
    runs = list(_by_run(shared)) if len(shared) else []
    width = 0.8 / max(len(runs), 1)
    for i, (name, v, g) in enumerate(runs):
        ax.bar(
            g["share_degree"] + (i - (len(runs) - 1) / 2) * width,
            g["pages"],
            width,
            color=variant_color(v),
            label=name,
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # a share count is a whole number
    ax.set_yscale("symlog")
    ax.set_xlabel("share count recorded in the struct page")
    ax.set_ylabel("pages")
    ax.set_title("Share-degree distribution")
    _legend(ax)
    return ax


def plot_latency_cdf(
    latency: pd.DataFrame, *, op: str | None = None, ax: Axes | None = None
) -> Axes:
    """Empirical CDF of per-operation latency, one line per variant (and profile).

    Parameters
    ----------
    latency : DataFrame
        One row per operation: ``variant``, ``op``, ``latency_ns`` (and optionally ``profile``).
    op : str, optional
        Restrict to one operation type (e.g. ``"write_fault"``).
    """
    ax = _ax(ax)
    df = latency if op is None else latency[latency["op"] == op]
    keys = ["variant"] + (["profile"] if "profile" in df and df["profile"].nunique() > 1 else [])
    for key, g in df.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        x = np.sort(g["latency_ns"].to_numpy(dtype=np.float64))
        if len(x) == 0:
            continue
        y = np.arange(1, len(x) + 1) / len(x)
        ax.step(
            x,
            y,
            where="post",
            color=variant_color(str(key[0])),
            label=" / ".join(map(str, key)),
            linestyle="-" if len(key) == 1 else ["-", "--", ":", "-."][hash(key[1]) % 4],
        )
    ax.set_xscale("log")
    ax.set_xlabel("latency (ns)")
    ax.set_ylabel("fraction of operations")
    ax.set_title(f"Latency CDF{'' if op is None else f' ({op})'}")
    _legend(ax)
    return ax


def plot_memory_failure_owners(summary: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Owners of poisoned pages found via the fs reverse map versus the page->mapping fallback.

    Parameters
    ----------
    summary : DataFrame
        Columns ``variant``, ``mf_owners_true``, ``mf_owners_rmap``, ``mf_owners_page_mapping``.
    """
    ax = _ax(ax)
    x = np.arange(len(summary))
    ax.bar(
        x - 0.27,
        summary["mf_owners_true"],
        0.27,
        color="lightgray",
        edgecolor="black",
        label="true owners",
    )
    ax.bar(
        x,
        summary["mf_owners_rmap"],
        0.27,
        color=[variant_color(v) for v in summary["variant"]],
        edgecolor="black",
        label="rmap path",
    )
    ax.bar(
        x + 0.27,
        summary["mf_owners_page_mapping"],
        0.27,
        color=[variant_color(v) for v in summary["variant"]],
        hatch="//",
        edgecolor="black",
        label="page->mapping fallback",
    )
    ax.set_xticks(x, _runs(summary), rotation=20, ha="right")
    ax.set_ylabel("(file, offset) owners found")
    ax.set_title("Memory failure: owners found")
    _legend(ax)
    return ax


def plot_cycles_per_op(latency: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Mean CPU cycles per operation type, one bar per variant.

    Parameters
    ----------
    latency : DataFrame
        One row per operation: ``variant``, ``op``, ``latency_cycles``.
    """
    ax = _ax(ax)
    runs = list(_by_run(latency)) if len(latency) else []
    ops = sorted(set(latency["op"]))
    width = 0.8 / max(len(runs), 1)
    x = np.arange(len(ops))
    for i, (name, v, g) in enumerate(runs):
        mean = g.groupby("op")["latency_cycles"].mean().reindex(ops)
        ax.bar(
            x + (i - (len(runs) - 1) / 2) * width,
            mean.to_numpy(dtype=np.float64),
            width,
            color=variant_color(v),
            label=name,
        )
    ax.set_xticks(x, ops, rotation=20, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("mean latency (CPU cycles)")
    ax.set_title("Cycles per operation")
    _legend(ax)
    return ax
