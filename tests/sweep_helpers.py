"""Shared helpers of the sweep tests (not a test module)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = ROOT / "scenarios" / "sweeps"
TINY = SWEEPS / "tiny.toml"
BASE = ROOT / "scenarios" / "vm-clones.toml"

#: Small sizes so that each run takes well under a second.
TINY_SET = {
    "device.size": "64MiB",
    "workload.image_size": "256KiB",
    "workload.accesses_per_vm": 64,
    "run.cpus": 2,
}

#: Metric columns that measure the host (wall time, memory), not the simulation.
_HOST_COLUMNS = re.compile(r"wall|elapsed|rss|peak_mem|host|timestamp|_s$")


def write_sweep(
    path: Path,
    *,
    factors: dict,
    fixed: dict | None = None,
    entropy: int | None = 11,
    extra: str = "",
) -> Path:
    """Write a sweep file whose base is a copy of the project's vm-clones scenario.

    The copy (``base.toml`` next to the sweep file) keeps a test's plan stable even if the
    shipped scenario is edited while the test runs.
    """
    fixed = TINY_SET if fixed is None else fixed
    base = path.parent / "base.toml"
    if not base.exists():
        base.write_text(BASE.read_text())
    lines = ['base = "base.toml"']
    if entropy is not None:
        lines.append(f"entropy = {entropy}")
    lines.append(extra)
    lines.append("[set]")
    lines += [f'"{k}" = {_toml(v)}' for k, v in fixed.items()]
    lines.append("[factors]")
    lines += [f'"{k}" = [{", ".join(_toml(x) for x in v)}]' for k, v in factors.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(v) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v)


def deterministic(df: pd.DataFrame) -> pd.DataFrame:
    """The columns of a sweep table that must not depend on the executor."""
    return df[[c for c in df.columns if not _HOST_COLUMNS.search(c)]].reset_index(drop=True)


def tmp_entries(runs: Path) -> list[str]:
    return sorted(p.name for p in runs.iterdir() if p.name.startswith(".")) if runs.is_dir() else []
