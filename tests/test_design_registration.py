"""A new design is one module: registered from here, every command knows it by name.

``LastOwner`` below is all there is of the design (its per-page transcription, its kernel
range and its fault rules); nothing in ``sim/`` names it, yet ``variants``, ``run``,
``compare``, ``hunt`` and ``xfsio`` run it once it is registered.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from sim.cli import main
from sim.memmap import VARIANTS, FaultRules, Variant, register, unregister

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scenarios" / "scripts" / "clone-cow.xfsio"
SMALL = [
    "workload.clones=2",
    "workload.image_size='2MiB'",
    "workload.accesses_per_vm=64",
    "device.size='64MiB'",
    "output.plots=false",
]


class LastOwner(Variant):
    """Proposal: the last mapper owns the page, silently; a put by another owner keeps it."""

    name = "last-owner"
    aliases = ("test-proposal",)
    kernels = "none"
    description = "test proposal: the last associate owns the page, no warning"
    in_kernel = False
    fault_rules = FaultRules(
        generation="last-owner",
        flag="never",
        replace="shared",
        dirty="write",
        towrite="cow",
        invalidate_remapped=True,
        clear_dirty_first=True,
    )

    def associate(self, state, pfn, npages, mapping, index, flag):
        """Every page of the entry takes ``(mapping, index + i)``."""
        for i, page in enumerate(range(pfn, pfn + npages)):
            state.mapping[page] = mapping
            state.index[page] = index + i
            state.count("page_updates")
        state.count("associate_calls")
        return npages

    def disassociate(self, state, pfn, npages, mapping, trunc):
        """Pages owned by ``mapping`` go back to (NULL, 0); others keep their owner."""
        for page in range(pfn, pfn + npages):
            if state.mapping[page] == mapping:
                if state.index[page] != 0 or mapping != 0:
                    state.count("pages_reset")
                state.mapping[page] = 0
                state.index[page] = 0
            state.count("page_updates")
        state.count("disassociate_calls")
        return npages


@pytest.fixture
def last_owner():
    register(LastOwner)
    try:
        yield VARIANTS["last-owner"]
    finally:
        unregister("last-owner")
    assert "last-owner" not in VARIANTS


def test_variants_lists_it(last_owner, capsys):
    assert main(["variants"]) == 0
    out = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.startswith("last-owner ")]
    assert len(row) == 1 and "test-proposal" in row[0] and "none (proposal)" in row[0]
    assert "last-owner" in out.split("No released kernel has:")[1]


def test_run_and_compare_take_it(last_owner, tmp_path, capsys):
    run_out = tmp_path / "run"
    args = [
        "run",
        "vm-clones",
        "--quiet",
        "--out",
        str(run_out),
        "--set",
        "variant.name=last-owner",
    ]
    for s in SMALL:
        args += ["--set", s]
    assert main(args) == 0
    s = pd.read_parquet(run_out / "summary.parquet")
    assert list(s["variant"]) == ["last-owner"]
    assert s["warnings_raw"].iloc[0] == 0  # the design has no WARN site

    cmp_out = tmp_path / "cmp"
    args = ["compare", "vm-clones", "--quiet", "--out", str(cmp_out)]
    args += ["--variants", "single-owner,test-proposal"]
    for s_ in SMALL:
        args += ["--set", s_]
    assert main(args) == 0
    s = pd.read_parquet(cmp_out / "summary.parquet").set_index("variant")
    assert list(s.index) == ["single-owner", "last-owner"]
    # same stream, the single owner warns where the last owner takes the page silently
    assert s["operations"].nunique() == 1
    assert s.loc["single-owner", "warnings_raw"] > 0 == s.loc["last-owner", "warnings_raw"]


def test_hunt_takes_it(last_owner, tmp_path, capsys):
    out = tmp_path / "h"
    argv = ["hunt", "--variant", "last-owner", "--budget", "40", "--episode-len", "8"]
    assert main(argv + ["--seed", "3", "--out", str(out), "--quiet"]) == 0
    df = pd.read_parquet(out / "hunt.parquet")
    assert set(df["variant"]) == {"last-owner"}
    assert (df["ops_run"] > 0).all()
    # --all-variants includes the registered design
    out2 = tmp_path / "h2"
    argv = ["hunt", "--all-variants", "--budget", "4", "--episode-len", "4", "--engine", "python"]
    assert main(argv + ["--out", str(out2), "--quiet"]) == 0
    assert "last-owner" in set(pd.read_parquet(out2 / "hunt.parquet")["variant"])


def test_xfsio_runs_it_under_its_fault_rules(last_owner, tmp_path, capsys):
    dest = tmp_path / "s.json"
    assert main(["xfsio", str(SCRIPT), "--variant", "last-owner", "--summary-out", str(dest)]) == 0
    summary = json.loads(dest.read_text())
    assert summary["variant"] == "last-owner"
    assert summary["generation"] == "last-owner"  # the design's own fault rules are in force
    assert "vlast-owner paths" in capsys.readouterr().out


def test_unknown_until_registered(capsys):
    assert "last-owner" not in VARIANTS
    assert main(["xfsio", str(SCRIPT), "--variant", "last-owner"]) == 2
    assert "unknown variant 'last-owner'" in capsys.readouterr().err


def test_a_taken_name_is_refused(last_owner):
    class Clash(LastOwner):
        name = "page-share"
        aliases = ()

    class AliasClash(LastOwner):
        name = "other"
        aliases = ("v6.2",)

    for cls in (Clash, AliasClash):
        with pytest.raises(ValueError, match="taken"):
            register(cls)
    assert type(VARIANTS["page-share"]).__name__ == "PageShare" and "other" not in VARIANTS
