"""Running sweeps: the same table on every executor, failed runs, SIGINT, SIGKILL and --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sweep_helpers import ROOT, TINY, deterministic, tmp_entries, write_sweep

import sim.runner
from sim.cli import main
from sim.sweep import build_plan, load_sweep, open_backend, run_sweep
from sim.sweep.layout import DONE_FILE

#: Factors of the sweep the kill tests interrupt: 16 runs, so that it is still running when
#: the first run directory appears.
KILL_FACTORS = {
    "workload.clones": [1, 2, 3, 4],
    "variant.name": ["cow-index", "folio-share"],
    "device.memmap": ["dram", "pmem"],
}


def _sweep(args: list[str]) -> int:
    return main(["sweep", *args, "--quiet"])


def _sweep_verbose(args: list[str]) -> int:
    return main(["sweep", *args])


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The tiny sweep run in this process (--workers 1): the reference table."""
    out = tmp_path_factory.mktemp("ref") / "sweep"
    assert _sweep([str(TINY), "--workers", "1", "--out", str(out)]) == 0
    return out


def _table(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "sweep.parquet")


def test_table_has_one_row_per_run_with_factors_seed_metrics_status(reference):
    df = _table(reference)
    plan = json.loads((reference / "sweep.json").read_text())
    assert list(df["run"]) == list(range(8)) == [r["run"] for r in plan["runs"]]
    cols = list(df.columns)
    assert cols[:6] == [
        "run",
        "workload.clones",
        "variant.name",
        "device.memmap",
        "seed_entropy",
        "seed_spawn_key",
    ]
    assert cols[-2:] == ["status", "error"]
    assert len(cols) > 7, "no metric columns"
    assert df["run"].dtype == np.int64 and df["workload.clones"].dtype == np.int64
    assert not any(pd.api.types.is_unsigned_integer_dtype(t) for t in df.dtypes)
    assert (df["status"] == "ok").all() and df["error"].isna().all()
    assert (df["seed_entropy"] == 20261125).all()
    assert list(df["seed_spawn_key"]) == list(df["run"])
    assert list(df["workload.clones"]) == [1, 1, 1, 1, 3, 3, 3, 3]
    assert list(df["device.memmap"]) == ["dram", "pmem"] * 4
    # Each row's metrics are the run directory's summary row.
    for r in plan["runs"]:
        summary = pd.read_parquet(reference / "runs" / r["dir"] / DONE_FILE)
        row = df[df["run"] == r["run"]].iloc[0]
        for c in summary.columns:
            if c in df.columns and c not in ("run",) and "." not in c:
                assert row[c] == summary[c].iloc[0] or (
                    pd.isna(row[c]) and pd.isna(summary[c].iloc[0])
                )
    assert sorted(p.name for p in (reference / "runs").iterdir()) == sorted(
        r["dir"] for r in plan["runs"]
    )
    assert not (reference / "sweep.lock").exists()


def test_same_table_with_one_worker_two_workers_and_a_local_dask_cluster(reference, tmp_path):
    want = deterministic(_table(reference))
    assert _sweep([str(TINY), "--workers", "2", "--out", str(tmp_path / "pool")]) == 0
    pd.testing.assert_frame_equal(deterministic(_table(tmp_path / "pool")), want)
    assert (
        _sweep(
            [str(TINY), "--scheduler", "local", "--workers", "2", "--out", str(tmp_path / "dask")]
        )
        == 0
    )
    pd.testing.assert_frame_equal(deterministic(_table(tmp_path / "dask")), want)


def test_plots_of_a_sweep_directory(reference):
    from sim.sweep.plots import write_sweep_plots

    written = write_sweep_plots(reference)
    assert written, "no figure written"
    for p in written:
        assert p.parent == reference / "plots" and p.stat().st_size > 1000


def test_a_failing_run_is_a_failed_row_the_sweep_goes_on_and_exits_1(
    reference, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "out"
    real = sim.runner.run_scenario
    monkeypatch.setattr(sim.runner, "run_scenario", _flaky_in_process(real))
    assert _sweep([str(TINY), "--workers", "1", "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    df = _table(out)
    failed = df[df["status"] == "failed"]
    assert list(failed["run"]) == [6, 7]
    assert list(failed["error"]) == [
        "RuntimeError: injected failure for dram",
        "RuntimeError: injected failure for pmem",
    ]
    assert (df.loc[df["status"] == "ok", "error"].isna()).all()
    assert len(df) == 8 and (df["status"] == "ok").sum() == 6
    assert "failed runs" in printed and "injected failure for dram" in printed
    info = json.loads(next((out / "runs").glob("00006-*.failed.json")).read_text())
    assert info["run"] == 6 and info["seed"] == {"entropy": 20261125, "spawn_key": [6]}
    assert "injected failure" in info["traceback"]
    # The ok runs equal the reference ones.
    ok = deterministic(df[df["status"] == "ok"]).drop(columns=["status", "error"])
    ref = deterministic(_table(reference))
    ref = ref[ref["run"].isin(ok["run"])].drop(columns=["status", "error"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(ok.reset_index(drop=True), ref, check_dtype=False)
    # --resume retries the failed runs only; with the fault gone the sweep completes.
    monkeypatch.setattr(sim.runner, "run_scenario", real)
    before = _stamps(out)
    assert _sweep([str(TINY), "--out", str(out), "--resume", "--workers", "1"]) == 0
    assert {k: v for k, v in _stamps(out).items() if k in before} == before
    pd.testing.assert_frame_equal(deterministic(_table(out)), deterministic(_table(reference)))
    assert not list((out / "runs").glob("*.failed.json"))


def _flaky_in_process(real):
    def run(scenario, out_dir, *, seed_sequence=None, quiet=True):
        d = scenario.to_dict()
        if d["workload"]["clones"] == 3 and d["variant"]["name"] == "folio-share":
            raise RuntimeError(f"injected failure for {d['device']['memmap']}")
        return real(scenario, out_dir, seed_sequence=seed_sequence, quiet=quiet)

    return run


def _finished(out: Path) -> list[Path]:
    """The summary files of finished runs (not of hidden temporary directories)."""
    if not (out / "runs").is_dir():
        return []
    return sorted(p for p in (out / "runs").glob(f"[!.]*/{DONE_FILE}"))


def _stamps(out: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of every finished run's summary: a re-run would change them."""
    return {p.parent.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in _finished(out)}


def _start(sweep: Path, out: Path, *extra: str) -> subprocess.Popen:
    """``python -m sim sweep`` with 2 worker processes, in the background."""
    cmd = [
        sys.executable,
        "-m",
        "sim",
        "sweep",
        str(sweep),
        "--workers",
        "2",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]
    return subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_runs(proc: subprocess.Popen, out: Path, n: int, *, timeout_s: float = 180.0) -> None:
    """Return as soon as ``n`` runs have finished directories (polling every 5 ms)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(_finished(out)) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended before {n} runs finished: {proc.communicate()}")
        time.sleep(0.005)
    proc.kill()
    raise AssertionError(f"{n} runs did not finish in time")


@pytest.fixture(scope="module")
def kill_sweep(tmp_path_factory):
    """A 16-run sweep file and its uninterrupted table (run in this process)."""
    d = tmp_path_factory.mktemp("kill")
    sweep = write_sweep(d / "kill.toml", factors=KILL_FACTORS, entropy=99)
    assert _sweep([str(sweep), "--workers", "1", "--out", str(d / "whole")]) == 0
    return sweep, _table(d / "whole")


def _assert_rows_of(part: pd.DataFrame, whole: pd.DataFrame) -> None:
    """``part`` holds rows of ``whole``: equal values; a metric column only some runs report
    (e.g. one WARN site's count) may be absent from ``part`` when its rows lack it."""
    part = deterministic(part)
    rows = deterministic(whole)
    rows = rows[rows["run"].isin(part["run"])].reset_index(drop=True)
    for col in set(rows.columns) - set(part.columns):
        assert rows[col].isna().all(), col
    assert set(part.columns) <= set(rows.columns)
    pd.testing.assert_frame_equal(part, rows[list(part.columns)], check_dtype=False)


def _done(out: Path) -> list[str]:
    return sorted(p.parent.name for p in _finished(out))


def test_sigint_then_sigkill_then_resume_loses_nothing_and_runs_nothing_twice(
    kill_sweep, tmp_path, capsys
):
    sweep, whole = kill_sweep
    out = tmp_path / "out"
    runs = out / "runs"
    ref = deterministic(whole)

    # 1. SIGINT partway: exit 130, finished runs kept, nothing half-written, no failed rows.
    proc = _start(sweep, out)
    _wait_for_runs(proc, out, 1)
    proc.send_signal(signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    assert tmp_entries(runs) == [], "temporary directories left behind"
    assert not list(runs.glob("*.failed.json")), "abandoned runs must not be recorded as failed"
    done = _done(out)
    assert 1 <= len(done) < 16, "the sweep was not interrupted partway"
    assert sorted(p.name for p in runs.iterdir()) == done  # no partial run directory
    df = _table(out)
    assert len(df) == len(done) and (df["status"] == "ok").all()
    _assert_rows_of(df, ref)

    # 2. Resume, and SIGKILL it once it has finished a run of its own.
    stamps = _stamps(out)
    proc = _start(sweep, out, "--resume")
    _wait_for_runs(proc, out, len(done) + 1)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    time.sleep(0.5)  # its workers die with it (PR_SET_PDEATHSIG); let that happen
    killed = _stamps(out)
    assert len(done) < len(killed) < 16, "the resumed sweep was not killed partway"
    assert {k: killed[k] for k in stamps} == stamps, "a finished run was run again"
    assert not (out / "sweep.parquet").exists() or len(_table(out)) == len(done)
    stale = tmp_entries(runs)  # what the killed runs were writing

    # 3. Resume to the end (here in this process): only the missing runs run, stale
    # temporary directories are removed, and the table is the uninterrupted one.
    capsys.readouterr()
    assert _sweep_verbose([str(sweep), "--workers", "1", "--out", str(out), "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"{len(killed)} of 16 runs already done, {16 - len(killed)} to run" in err
    if stale:
        assert "temporary entr" in err
    after = _stamps(out)
    assert len(after) == 16
    assert {k: after[k] for k in killed} == killed, "a finished run was run again"
    assert tmp_entries(runs) == [] and not list(runs.glob("*.failed.json"))
    pd.testing.assert_frame_equal(deterministic(_table(out)), ref)


def die_in_run_2(scenario, out_dir, *, seed_sequence=None, quiet=True):
    """Run function whose worker process dies (as if killed by the OOM killer) on run 2."""
    if "00002-" in Path(out_dir).name:
        os._exit(9)
    return sim.runner.run_scenario(scenario, out_dir, seed_sequence=seed_sequence, quiet=quiet)


def test_a_dying_worker_process_fails_its_runs_and_resume_completes(reference, tmp_path):
    out = tmp_path / "out"
    plan = build_plan(load_sweep(TINY))
    outcome = run_sweep(
        plan, out, backend=open_backend(workers=2, scheduler=None), run_fn=die_in_run_2
    )
    assert outcome.exit_status == 1
    assert 2 in [f[0] for f in outcome.failed]
    assert all("worker" in f[2] for f in outcome.failed)
    assert len(outcome.ok) + len(outcome.failed) + outcome.missing == 8
    assert tmp_entries(out / "runs") == []
    again = run_sweep(plan, out, backend=open_backend(workers=1, scheduler=None), resume=True)
    assert again.exit_status == 0 and len(again.ok) == 8
    pd.testing.assert_frame_equal(deterministic(_table(out)), deterministic(_table(reference)))
