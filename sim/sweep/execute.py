"""Running a sweep: submit the missing runs, record each outcome, survive interruption.

- Runs are submitted in run order, at most ``2 * backend.slots`` at a time.
- A run that raises is recorded in ``runs/<dir>.failed.json`` (atomically) and the sweep
  goes on; ``--resume`` retries failed runs.
- SIGINT (Ctrl-C): pending runs are cancelled, running ones abandoned (their workers are
  stopped), their temporary directories removed, and ``sweep.parquet`` assembled from the runs
  that finished. SIGKILL: every finished run is already in its directory; ``--resume`` runs
  only the missing ones.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import signal
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.errors import InputError
from sim.results.store import atomic_write_json, write_parquet
from sim.sweep.executors import Backend, describe_exception
from sim.sweep.layout import DONE_FILE, SweepLayout
from sim.sweep.plan import SweepPlan, check_resumable
from sim.sweep.table import assemble_table

__all__ = ["SweepOutcome", "run_sweep", "execute_run", "prepare_output"]


@dataclass
class SweepOutcome:
    """What a sweep invocation did.

    Attributes
    ----------
    out_dir : Path
        The sweep's output directory.
    total : int
        Runs in the plan.
    ok, failed : list
        Finished runs (indices), and failed runs as ``(index, dirname, error)``.
    skipped : int
        Runs already done before this invocation (``--resume``).
    executed : list of int
        Runs this invocation started and saw finish (ok or failed).
    interrupted : bool
        True if SIGINT stopped the sweep.
    broken : str or None
        Set when the executor broke (a worker process died): the runs not yet submitted are
        left missing for ``--resume``.
    """

    out_dir: Path
    total: int
    ok: list[int] = field(default_factory=list)
    failed: list[tuple[int, str, str]] = field(default_factory=list)
    skipped: int = 0
    executed: list[int] = field(default_factory=list)
    interrupted: bool = False
    #: Why the executor stopped accepting runs (a worker process died), or None.
    broken: str | None = None

    @property
    def missing(self) -> int:
        """Runs neither done nor failed (stopped before they ran)."""
        return self.total - len(self.ok) - len(self.failed)

    @property
    def exit_status(self) -> int:
        """130 if interrupted, 1 if any run failed or is missing, else 0."""
        if self.interrupted:
            return 130
        return 1 if self.failed or self.missing else 0


def execute_run(run_fn, scenario, run_dir: str, entropy: int, spawn_key: int) -> dict:
    """Run one scenario (in a worker): seed it, call the run function, report the outcome.

    Exceptions of the run become ``{"status": "failed", ...}`` so they reach the sweep even
    when they cannot be pickled.
    """
    if run_fn is None:
        from sim.runner import run_scenario as run_fn
    seed_sequence = np.random.SeedSequence(entropy, spawn_key=(spawn_key,))
    try:
        metrics = run_fn(scenario, Path(run_dir), seed_sequence=seed_sequence, quiet=True)
    except Exception as exc:  # noqa: BLE001 - a failed run is a result, not a crash
        return {
            "status": "failed",
            "error": describe_exception(exc),
            "traceback": traceback.format_exc(),
        }
    return {"status": "ok", "metrics": {k: _py(v) for k, v in dict(metrics or {}).items()}}


def _py(v):
    return v.item() if hasattr(v, "item") else v


def prepare_output(plan: SweepPlan, out_dir: Path, *, resume: bool) -> SweepLayout:
    """Check the output directory for a new sweep (must be absent or empty) or a resumed one.

    Nothing is written here. Raises InputError when the directory does not fit.
    """
    layout = SweepLayout(out_dir)
    if resume:
        if not layout.plan_file.is_file():
            raise InputError(
                "no sweep.json here: nothing to resume (start the sweep without --resume)",
                where=str(out_dir),
            )
        try:
            stored = json.loads(layout.plan_file.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(
                f"cannot read sweep.json: {exc}", where=str(layout.plan_file)
            ) from None
        check_resumable(stored, plan, where=str(layout.plan_file))
    elif out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(
            "output directory exists and is not empty (use --resume to continue a sweep there, "
            "or choose another --out)",
            where=str(out_dir),
        )
    return layout


def run_sweep(
    plan: SweepPlan,
    out_dir: str | os.PathLike,
    *,
    backend: Backend,
    resume: bool = False,
    run_fn=None,
    progress: bool = False,
    plots: bool = True,
    log=None,
) -> SweepOutcome:
    """Run the missing runs of ``plan`` into ``out_dir`` and assemble ``sweep.parquet``.

    Parameters
    ----------
    plan : SweepPlan
        The expanded, validated sweep.
    out_dir : path
        The output directory (created for a new sweep; must hold ``sweep.json`` with the same
        plan when ``resume``).
    backend : Backend
        Where runs execute (:func:`sim.sweep.executors.open_backend`). Closed (or aborted)
        before this returns.
    resume : bool
        Continue a sweep: only runs without a finished directory run; failed runs are retried.
    run_fn : callable, optional
        ``run_fn(scenario, out_dir, *, seed_sequence, quiet) -> dict`` writing the run's
        results directory atomically; default :func:`sim.runner.run_scenario` (imported in the
        worker). Must be picklable for process and dask backends.
    progress : bool
        Show a tqdm progress bar on stderr.
    plots : bool
        Write ``plots/`` when the sweep completes.
    log : callable, optional
        ``log(str)`` for status lines (default: stderr).
    """
    log = log or (lambda s: print(s, file=sys.stderr))
    out_dir = Path(out_dir).resolve()
    try:
        return _run_sweep(
            plan,
            out_dir,
            backend=backend,
            resume=resume,
            run_fn=run_fn,
            progress=progress,
            plots=plots,
            log=log,
        )
    except BaseException:
        backend.abort()  # a no-op when the sweep already closed or aborted it
        raise


def _run_sweep(
    plan, out_dir: Path, *, backend, resume, run_fn, progress, plots, log
) -> SweepOutcome:
    layout = prepare_output(plan, out_dir, resume=resume)
    out_dir.mkdir(parents=True, exist_ok=True)
    outcome = SweepOutcome(out_dir=out_dir, total=len(plan.runs))
    with layout.locked():
        plan_json = plan.to_json()
        if not resume:
            atomic_write_json(layout.plan_file, plan_json)
        layout.runs_dir.mkdir(exist_ok=True)
        stale = layout.remove_temp_entries()
        if stale:
            log(
                f"removed {stale} temporary entr{'y' if stale == 1 else 'ies'} "
                "left by an interrupted sweep"
            )
        todo = []
        for run in plan.runs:
            if layout.is_done(run.dirname):
                outcome.skipped += 1
                continue
            if layout.run_dir(run.dirname).exists():  # never complete without DONE_FILE: redo it
                _remove_tree(layout.run_dir(run.dirname))
            todo.append(run)
        if resume:
            log(
                f"resuming: {outcome.skipped} of {len(plan.runs)} runs already done, "
                f"{len(todo)} to run"
            )
        _execute(
            plan, layout, todo, backend=backend, run_fn=run_fn, progress=progress, outcome=outcome
        )
        # Assemble from the directories (with SIGINT ignored: this must not be cut short).
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
        previous_term = signal.signal(signal.SIGTERM, signal.SIG_IGN) if _main_thread() else None
        try:
            table = assemble_table(layout, plan_json)
            write_parquet(table, layout.table_file)
            outcome.ok = [int(r) for r in table.loc[table["status"] == "ok", "run"]]
            dirs = {r.index: r.dirname for r in plan.runs}
            outcome.failed = [
                (int(r), dirs[int(r)], str(e))
                for r, e in table.loc[table["status"] == "failed", ["run", "error"]].itertuples(
                    index=False
                )
            ]
            if plots and not outcome.interrupted and outcome.missing == 0 and outcome.ok:
                from sim.sweep.plots import write_sweep_plots

                try:
                    write_sweep_plots(out_dir, table=table)
                except Exception as exc:  # noqa: BLE001 - the table is written; say, go on
                    log(
                        f"could not draw the sweep's plots ({describe_exception(exc)}); "
                        f"try: daxsim plot {out_dir}"
                    )
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
                signal.signal(signal.SIGTERM, previous_term)
        layout.lock_file.unlink(missing_ok=True)
    return outcome


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _execute(
    plan: SweepPlan,
    layout: SweepLayout,
    todo: list,
    *,
    backend: Backend,
    run_fn,
    progress: bool,
    outcome: SweepOutcome,
) -> None:
    from tqdm import tqdm

    bar = tqdm(
        total=len(plan.runs),
        initial=outcome.skipped,
        unit="run",
        desc="sweep",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    previous = signal.signal(signal.SIGINT, signal.default_int_handler) if _main_thread() else None
    previous_term = signal.getsignal(signal.SIGTERM) if _main_thread() else None
    pending: dict[cf.Future, object] = {}
    queue = iter(todo)
    try:
        try:
            limit = max(1, 2 * backend.slots)
            while True:
                while len(pending) < limit and not outcome.broken:
                    run = next(queue, None)
                    if run is None:
                        break
                    try:
                        fut = backend.submit(
                            execute_run,
                            run_fn,
                            run.scenario,
                            str(layout.run_dir(run.dirname)),
                            plan.entropy,
                            run.spawn_key,
                        )
                    except (cf.BrokenExecutor, RuntimeError) as exc:
                        # A worker died (killed, out of memory): stop submitting; the runs
                        # not submitted stay missing and --resume runs them.
                        outcome.broken = describe_exception(exc)
                        break
                    pending[fut] = run
                if not pending:
                    break
                done, _ = cf.wait(list(pending), timeout=0.5, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    _record(plan, layout, pending.pop(fut), fut, outcome)
                    bar.update(1)
        except KeyboardInterrupt:  # SIGINT, or SIGTERM (the command line raises it alike)
            outcome.interrupted = True
            if _main_thread():
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            bar.close()
            finished_before = {f for f in pending if f.done()}
            backend.abort()
            # Runs that finished before or while we were stopping keep their outcome; the
            # futures that the abort itself broke (or cancelled) are simply not run.
            for fut, run in pending.items():
                if fut in finished_before or (
                    fut.done() and not fut.cancelled() and fut.exception() is None
                ):
                    _record(plan, layout, run, fut, outcome)
            layout.remove_temp_entries()
        else:
            if outcome.broken:
                backend.abort()
                layout.remove_temp_entries()  # of the runs the broken pool took down
            else:
                backend.close()
    finally:
        bar.close()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
            signal.signal(signal.SIGTERM, previous_term)


def _record(
    plan: SweepPlan, layout: SweepLayout, run, fut: cf.Future, outcome: SweepOutcome
) -> None:
    """Record one finished future: nothing to do for a finished run dir, a failed.json otherwise."""
    if fut.cancelled():
        return
    exc = fut.exception()
    if isinstance(exc, cf.BrokenExecutor) and not outcome.broken:
        outcome.broken = describe_exception(exc)
    if exc is not None:
        result = {
            "status": "failed",
            "error": f"the run's worker failed: {describe_exception(exc)}",
            "traceback": "".join(traceback.format_exception(exc)),
        }
    else:
        result = fut.result()
    failed_file = layout.failed_file(run.dirname)
    if result["status"] == "ok" and not layout.is_done(run.dirname):
        result = {
            "status": "failed",
            "error": f"the run function returned without writing {DONE_FILE}",
            "traceback": None,
        }
    outcome.executed.append(run.index)
    if result["status"] == "ok":
        failed_file.unlink(missing_ok=True)
        return
    atomic_write_json(
        failed_file,
        {
            "run": run.index,
            "dir": run.dirname,
            "factors": run.factors,
            "seed": {"entropy": plan.entropy, "spawn_key": [run.spawn_key]},
            "error": result["error"],
            "traceback": result.get("traceback"),
        },
    )
