"""Assembling ``sweep.parquet`` from the run directories.

One row per finished run, in run order. Columns, in order:

- ``run`` (int64): the run's index in the expansion, also its seed's spawn key;
- the factors, one column per factor named by its dotted key (``workload.clones``);
- ``seed_entropy`` and ``seed_spawn_key``: the run's seed is ``SeedSequence(seed_entropy,
  spawn_key=(seed_spawn_key,))``; the spawn key is ``run`` unless the sweep sets
  ``stream_factors``; the entropy is int64 when it fits, else its decimal string;
- the run's scalar metrics (the one row of its ``summary.parquet``), except columns that
  repeat the ones above;
- ``status`` (``"ok"`` or ``"failed"``) and ``error`` (the exception message, null when ok).

Runs that have not finished (an interrupted sweep) have no row; ``--resume`` adds them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sim.sweep.layout import DONE_FILE, SweepLayout

__all__ = ["assemble_table", "read_run_metrics", "FIXED_COLUMNS"]

#: Columns every sweep table has besides the factors and the metrics.
FIXED_COLUMNS = ("run", "seed_entropy", "seed_spawn_key", "status", "error")

_INT64_MAX = np.iinfo(np.int64).max


def read_run_metrics(run_dir: Path) -> tuple[dict, dict]:
    """The scalar metrics of one finished run (its ``summary.parquet`` row) and their dtypes."""
    df = pd.read_parquet(run_dir / DONE_FILE)
    if len(df) != 1:
        raise ValueError(f"{run_dir / DONE_FILE} has {len(df)} rows, expected 1")
    return {c: df[c].iloc[0] for c in df.columns}, dict(df.dtypes)


def assemble_table(layout: SweepLayout, plan_json: dict) -> pd.DataFrame:
    """Build the sweep table from ``runs/`` for the plan stored in ``sweep.json``.

    Parameters
    ----------
    layout : SweepLayout
        The sweep's output directory.
    plan_json : dict
        The content of ``sweep.json`` (see :meth:`sim.sweep.plan.SweepPlan.to_json`).
    """
    factor_keys = [f["key"] for f in plan_json.get("factors", [])]
    entropy = int(plan_json["entropy"])
    entropy_value = entropy if entropy <= _INT64_MAX else str(entropy)
    rows: list[dict] = []
    metric_dtypes: dict[str, list] = {}
    for run in plan_json["runs"]:
        row = {"run": int(run["run"])}
        for key in factor_keys:
            row[key] = run["factors"].get(key)
        row["seed_entropy"] = entropy_value
        row["seed_spawn_key"] = int(run.get("spawn_key", run["run"]))
        run_dir = layout.run_dir(run["dir"])
        failed = layout.failed_file(run["dir"])
        if (run_dir / DONE_FILE).is_file():
            metrics, dtypes = read_run_metrics(run_dir)
            for name, value in metrics.items():
                if name in row or name in FIXED_COLUMNS:
                    continue
                row[name] = value
                metric_dtypes.setdefault(name, []).append(dtypes[name])
            row["status"], row["error"] = "ok", None
        elif failed.is_file():
            info = json.loads(failed.read_text())
            row["status"], row["error"] = "failed", str(info.get("error", "unknown error"))
        else:
            continue
        rows.append(row)
    columns = [
        "run",
        *factor_keys,
        "seed_entropy",
        "seed_spawn_key",
        *metric_dtypes,
        "status",
        "error",
    ]
    df = pd.DataFrame(rows, columns=columns)
    df["run"] = df["run"].astype(np.int64)
    for key in factor_keys:
        df[key] = _factor_column(df[key])
    if isinstance(entropy_value, int):
        df["seed_entropy"] = df["seed_entropy"].astype(np.int64)
    df["seed_spawn_key"] = df["seed_spawn_key"].astype(np.int64)
    for name, dtypes in metric_dtypes.items():
        df[name] = _metric_column(df[name], dtypes)
    df["status"] = df["status"].astype(object)
    df["error"] = df["error"].astype(object)
    return df


def _factor_column(col: pd.Series) -> pd.Series:
    values = list(col)
    if values and all(isinstance(v, bool) for v in values):
        return col.astype(bool)
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return col.astype(np.int64)
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return col.astype(np.float64)
    # Strings, or mixed types ("8GiB" and 1048576): text, so Parquet has one type per column.
    return col.map(lambda v: v if isinstance(v, str) or v is None else json.dumps(v)).astype(object)


def _metric_column(col: pd.Series, dtypes: list) -> pd.Series:
    if all(
        pd.api.types.is_integer_dtype(d) and not pd.api.types.is_unsigned_integer_dtype(d)
        for d in dtypes
    ):
        return col.astype(np.int64) if col.notna().all() else col.astype("Int64")
    if all(pd.api.types.is_bool_dtype(d) for d in dtypes):
        return col.astype(bool) if col.notna().all() else col.astype("boolean")
    if all(pd.api.types.is_float_dtype(d) for d in dtypes):
        return col.astype(np.float64)
    return col
