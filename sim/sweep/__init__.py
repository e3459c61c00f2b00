"""Sweeps: a grid of scenarios run in parallel, resumable, assembled into one table.

The pieces, in the order a sweep uses them:

- :mod:`sim.sweep.spec`: the sweep file (``load_sweep``);
- :mod:`sim.sweep.plan`: the cartesian expansion, validated before anything runs
  (``build_plan``), stored as ``sweep.json``;
- :mod:`sim.sweep.executors`: in-process, process pool or dask.distributed (``open_backend``);
- :mod:`sim.sweep.execute`: running the missing runs, failures and interruption (``run_sweep``);
- :mod:`sim.sweep.table`: ``sweep.parquet`` assembled from the run directories;
- :mod:`sim.sweep.plots`: the sweep's figures.
"""

from __future__ import annotations

from sim.sweep.execute import SweepOutcome, execute_run, prepare_output, run_sweep
from sim.sweep.executors import Backend, open_backend
from sim.sweep.layout import SweepLayout
from sim.sweep.plan import PlannedRun, SweepPlan, build_plan, run_slug
from sim.sweep.spec import SweepSpec, load_sweep, parse_sweep
from sim.sweep.table import assemble_table

__all__ = [
    "Backend",
    "PlannedRun",
    "SweepLayout",
    "SweepOutcome",
    "SweepPlan",
    "SweepSpec",
    "assemble_table",
    "build_plan",
    "execute_run",
    "load_sweep",
    "open_backend",
    "parse_sweep",
    "prepare_output",
    "run_slug",
    "run_sweep",
]
