"""A run that failed does not look like a success: failed operations are in the table and the
summary, a run with failures the scenario did not allow warns on stderr (count by errno, the
first failures) and exits 1, and a workload whose first writes cannot fit the device is refused
before it runs (exit 2, naming the keys)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sim.cli import main
from sim.errors import InputError
from sim.scenario import load_scenario

#: CoW write faults (PMD ones among them) of 4 VMs on a 12 MiB image overflow a 16 MiB device.
OVERFLOW = [
    "--set",
    "device.size='16MiB'",
    "--set",
    "workload.image_size='12MiB'",
    "--set",
    "workload.clones=4",
    "--set",
    "workload.write_fraction=1.0",
    "--set",
    "workload.accesses_per_vm=512",
    "--set",
    "output.plots=false",
]


def test_the_warning_and_the_table_show_the_failures(tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["run", "vm-clones", "--out", str(out), *OVERFLOW]) == 1
    cap = capsys.readouterr()
    n = int(pd.read_parquet(out / "summary.parquet")["op_errors"].iloc[0])
    assert "warning" in cap.err and f"{n:,} of" in cap.err and "ENOSPC" in cap.err
    assert "run.allow_errors" in cap.err
    assert cap.err.count("(write_fault): ENOSPC") == min(n, 5)  # the first few, not all
    head, row = cap.out.splitlines()[1:3]
    assert "failed" in head.split()
    assert row.split()[head.split().index("failed")] == str(n)


def test_allowed_errors_are_reported_in_the_table_only(tmp_path, capsys):
    out = tmp_path / "res"
    argv = ["run", "vm-clones", "--out", str(out), *OVERFLOW, "--set", "run.allow_errors=true"]
    assert main(argv) == 0
    cap = capsys.readouterr()
    assert "warning" not in cap.err
    assert int(pd.read_parquet(out / "summary.parquet")["op_errors"].iloc[0]) > 0


def test_compare_exits_1_when_a_design_failed_operations(tmp_path, capsys):
    argv = ["compare", "vm-clones", "--quiet", "--out", str(tmp_path / "c"), *OVERFLOW]
    assert main(argv + ["--variants", "page-share,folio-share"]) == 1
    err = capsys.readouterr().err
    assert "page-share on optane-gen1" in err and "folio-share on optane-gen1" in err


@pytest.mark.parametrize(
    ("scenario", "sets", "keys"),
    [
        ("default", ["device.size='16MiB'"], "workload.image_size"),
        ("vm-clones", ["device.size='16MiB'", "workload.image_size='18MiB'"], "image_size"),
        ("containers", ["device.size='16MiB'"], "workload.layers x workload.layer_size"),
        ("db-snapshots", ["device.size='16MiB'"], "workload.db_size"),
        ("dedupe", ["device.size='16MiB'", "workload.files=9"], "workload.files x"),
        (
            "memory-failure",
            ["device.size='16MiB'", "workload.base.image_size='20MiB'"],
            "workload.base.image_size",
        ),
    ],
)
def test_a_workload_that_cannot_fit_the_device_is_refused_before_it_runs(
    tmp_path, capsys, scenario, sets, keys
):
    with pytest.raises(InputError) as e:
        load_scenario(scenario, sets)
    assert "device.size" in str(e.value) and keys in str(e.value)
    argv = ["run", scenario, "--out", str(tmp_path / "o")]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 2
    assert "device.size" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not list(tmp_path.iterdir())


def test_what_fits_exactly_is_accepted():
    sc = load_scenario("vm-clones", ["device.size='16MiB'", "workload.image_size='16MiB'"])
    assert sc.workload.params.image_size == sc.device.size


def test_a_sweep_run_with_failed_operations_is_a_failed_row(tmp_path, capsys):
    sweep = tmp_path / "w.toml"
    sets = "\n".join(
        f'"{k}" = {v}'
        for k, v in (
            ("device.size", '"16MiB"'),
            ("workload.image_size", '"12MiB"'),
            ("workload.clones", 4),
            ("workload.write_fraction", 1.0),
            ("workload.accesses_per_vm", 512),
            ("output.plots", "false"),
        )
    )
    base = Path(__file__).resolve().parents[1] / "scenarios" / "vm-clones.toml"
    factors = '"run.allow_errors" = [false, true]'
    sweep.write_text(f'base = "{base}"\nentropy = 1\n[set]\n{sets}\n[factors]\n{factors}\n')
    out = tmp_path / "out"
    assert main(["sweep", str(sweep), "--workers", "1", "--quiet", "--out", str(out)]) == 1
    table = pd.read_parquet(out / "sweep.parquet").set_index("run.allow_errors")
    assert table.loc[False, "status"] == "failed" and "ENOSPC" in table.loc[False, "error"]
    assert table.loc[True, "status"] == "ok" and table.loc[True, "op_errors"] > 0
