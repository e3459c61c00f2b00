"""``daxsim hunt`` command line: table, reproducers, hunt.parquet, input errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sim.cli import main
from sim.hunt.invariants import ALL_NAMES
from sim.memmap import VARIANTS

ROOT = Path(__file__).resolve().parents[1]
EXT = f"{ROOT / 'scenarios' / 'designs' / 'folio_share_reset_ext.py'}:FolioShareResetExt"


def test_all_variants_writes_table_and_parquet(tmp_path, capsys):
    out = tmp_path / "h"
    rc = main(
        [
            "hunt",
            "--all-variants",
            "--variant",
            EXT,
            "--budget",
            "60",
            "--seed",
            "1",
            "--episode-len",
            "12",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].startswith("design") and "association truth" in lines[0]
    for v in list(VARIANTS) + ["folio-share-reset-ext"]:
        assert any(line.startswith(v + " ") for line in lines), v
    df = pd.read_parquet(out / "hunt.parquet")
    assert len(df) == (len(VARIANTS) + 1) * len(ALL_NAMES)
    assert list(df.columns) == [
        "variant",
        "invariant",
        "status",
        "ops_to_find",
        "shrunk_ops",
        "shrunk_lines",
        "ops_run",
        "seed",
        "reproducer",
        "message",
        "confirmation",
        "kernel",
        "kernel_evidence",
    ]
    # without --confirm no finding is replayed on a kernel
    assert df["confirmation"].isna().all() and df["kernel"].isna().all()
    for c in ("ops_run", "seed"):
        assert df[c].dtype == np.int64
    # "none" is a null, not -1 or ''
    for c in ("ops_to_find", "shrunk_ops", "shrunk_lines"):
        assert df[c].dtype == pd.Int64Dtype()
    assert set(df["status"]) <= {"violated", "limit", "none"}
    found = df[df.status != "none"]
    assert found.ops_to_find.notna().all() and found.shrunk_lines.notna().all()
    assert (found.ops_to_find > 0).all() and (found.shrunk_lines > 0).all()
    for p in found.reproducer:
        assert Path(p).is_file() and Path(p).parent == out
    fs = df[(df.variant == "folio-share") & (df.invariant == "nothing_left_behind")]
    assert fs.status.iloc[0] == "violated"
    none = df[df.status == "none"]
    for c in ("ops_to_find", "shrunk_ops", "shrunk_lines", "reproducer", "message"):
        assert none[c].isna().all(), c
    assert not list(out.glob(".hunt-*"))  # no temp files left behind


def test_single_variant_prints_explanation(tmp_path, capsys):
    rc = main(
        [
            "hunt",
            "--variant",
            "folio-share",
            "--budget",
            "40",
            "--seed",
            "1",
            "--ops",
            "pwrite,read,unlink",
            "--files",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "nothing_left_behind broken by op" in out and "page pfn" in out and "before" in out
    assert (tmp_path / "folio-share-nothing_left_behind.xfsio").is_file()
    assert (tmp_path / "hunt.parquet").is_file()


def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    for argv in (
        ["hunt", "--variant", "nope"],
        ["hunt", "--variant", "page-share", "--ops", "frob"],
        ["hunt", "--variant", "page-share", "--budget", "0"],
        ["hunt", "--variant", "page-share", "--files", "0"],
        ["hunt", "--variant", "page-share", "--workers", "0"],
        ["hunt", "--variant", "page-share", "--ops", "read,unlink"],
        ["hunt", "--variant", "page-share", "--seed", "-1"],
        ["hunt"],
    ):
        assert main(argv + ["--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()
    assert "error" in capsys.readouterr().err


def test_time_budget_and_module_form(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    rc = main(
        [
            "hunt",
            "--variant",
            "scenarios.designs.folio_share_reset_ext:FolioShareResetExt",
            "--time",
            "0.3",
            "--ops",
            "pwrite,read,unlink",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert rc == 0
    df = pd.read_parquet(tmp_path / "hunt.parquet")
    assert set(df.variant) == {"folio-share-reset-ext"}
    assert (df.ops_run > 0).all()
    assert (df[df.invariant == "nothing_left_behind"].status == "none").all()


def test_workers_option_gives_the_same_table(tmp_path, capsys):
    outs = []
    for w in ("1", "2"):
        d = tmp_path / f"w{w}"
        assert (
            main(
                [
                    "hunt",
                    "--variant",
                    "cow-index",
                    "--budget",
                    "150",
                    "--seed",
                    "2",
                    "--workers",
                    w,
                    "--out",
                    str(d),
                    "--quiet",
                ]
            )
            == 0
        )
        outs.append(capsys.readouterr().out)
        df = pd.read_parquet(d / "hunt.parquet")
        outs.append(df.drop(columns=["reproducer"]).to_dict("records"))
        outs.append(sorted(p.read_text() for p in d.glob("*.xfsio")))
    assert outs[0] == outs[3] and outs[1] == outs[4] and outs[2] == outs[5]
    assert outs[2]  # reproducers were written and compared
