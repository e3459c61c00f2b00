"""One loader of designs (sim.memmap.get_variant) for every command.

A design in a file that is not on ``sys.path`` (``path/to/file.py:Class``) is accepted
wherever a design is named: ``run`` (``variant.name``), ``compare``, ``sweep``,
``pagestate``, ``hunt`` and ``xfsio``. ``FilePageShare`` is page-share under another name,
so each command's results must equal page-share's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sweep_helpers import deterministic, write_sweep

from sim.cli import main
from sim.errors import InputError
from sim.memmap import VARIANTS, get_variant

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scenarios" / "scripts" / "clone-cow.xfsio"
SMALL = [
    "workload.clones=2",
    "workload.image_size='2MiB'",
    "workload.accesses_per_vm=64",
    "device.size='64MiB'",
    "output.plots=false",
]
DESIGN = '''
from sim.memmap.variants import PageShare


class FilePageShare(PageShare):
    """page-share under another name, loaded from its file."""

    name = "file-page-share"
    aliases = ()
    in_kernel = False
'''


@pytest.fixture
def spec(tmp_path) -> str:
    path = tmp_path / "designs" / "mine.py"
    path.parent.mkdir()
    path.write_text(DESIGN)
    return f"{path}:FilePageShare"


def _with_sets(args: list[str], extra: list[str] = ()) -> list[str]:
    for s in [*SMALL, *extra]:
        args += ["--set", s]
    return args


def test_every_form_resolves(spec, tmp_path, monkeypatch):
    v = get_variant(spec)
    assert v.name == "file-page-share" and "file-page-share" not in VARIANTS
    assert type(get_variant(spec)) is type(v)  # the file is imported once
    assert get_variant("v6.2") is VARIANTS["page-share"]
    assert get_variant("sim.memmap.variants:CowIndex").name == "cow-index"
    # module:Class from the current directory, which is not on sys.path
    (tmp_path / "cwd_design_mod.py").write_text(DESIGN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert get_variant("cwd_design_mod:FilePageShare").name == "file-page-share"
    # a relative file path
    assert get_variant("designs/mine.py:FilePageShare").name == "file-page-share"


@pytest.mark.parametrize(
    "bad",
    ["no/such/file.py:X", "sim.memmap.variants:Nope", "no_such_module_xyz:X", "v9.9"],
)
def test_bad_specs_are_input_errors(bad):
    with pytest.raises(InputError):
        get_variant(bad)


def test_run_takes_a_design_file(spec, tmp_path):
    out = {}
    for name in ("page-share", spec):
        d = tmp_path / ("ref" if name == "page-share" else "file")
        args = ["run", "vm-clones", "--quiet", "--out", str(d)]
        assert main(_with_sets(args, [f"variant.name={name}"])) == 0
        out[name] = pd.read_parquet(d / "summary.parquet").iloc[0]
    ref, got = out["page-share"], out[spec]
    assert got["operations"] == ref["operations"] > 0
    for col in ("faults", "warnings_raw", "page_updates"):
        if col in ref.index:
            assert got[col] == ref[col], col


def test_compare_takes_a_design_file(spec, tmp_path):
    d = tmp_path / "cmp"
    args = ["compare", "vm-clones", "--quiet", "--out", str(d), "--variants", f"page-share,{spec}"]
    assert main(_with_sets(args)) == 0
    s = pd.read_parquet(d / "summary.parquet")
    assert len(s) == 2
    assert s["operations"].nunique() == 1 and s["warnings_raw"].nunique() == 1


def test_sweep_takes_a_design_file(spec, tmp_path):
    sweep = write_sweep(tmp_path / "s.toml", factors={"variant.name": ["page-share", spec]})
    out = tmp_path / "sweep"
    assert main(["sweep", str(sweep), "--workers", "1", "--out", str(out), "--quiet"]) == 0
    t = deterministic(pd.read_parquet(out / "sweep.parquet"))
    assert list(t["variant.name"]) == ["page-share", spec]
    assert (t["operations"] > 0).all()  # each run has its own seed: the streams differ


def test_pagestate_takes_a_design_file(spec, tmp_path):
    rng = np.random.default_rng(5)
    rows = ["op,pfn,npages,mapping,index,flag"]
    for _ in range(300):
        op = ("associate", "disassociate")[int(rng.integers(0, 2))]
        rows.append(f"{op},{rng.integers(0, 64)},1,{rng.integers(1, 5)},{rng.integers(0, 4)},1")
    trace = tmp_path / "t.csv"
    trace.write_text("\n".join(rows) + "\n")
    states = {}
    for name in ("page-share", spec):
        st = tmp_path / f"state-{len(states)}.csv"
        args = ["pagestate", str(trace), "--variant", name, "--pages", "64", "--state-out"]
        assert main([*args, str(st)]) == 0
        states[name] = st.read_text()
    assert states[spec] == states["page-share"] and states[spec].count("\n") > 1


def test_xfsio_takes_a_design_file(spec, tmp_path):
    dest = {}
    for name in ("page-share", spec):
        d = tmp_path / f"{len(dest)}.json"
        argv = ["xfsio", str(SCRIPT), "--variant", name, "--quiet", "--summary-out", str(d)]
        assert main(argv) == 0
        dest[name] = json.loads(d.read_text())
    assert dest[spec].pop("variant") == "file-page-share"
    dest["page-share"].pop("variant")
    assert dest[spec] == dest["page-share"] and dest[spec]["faults"] > 0


def test_hunt_takes_a_design_file(spec, tmp_path):
    out = tmp_path / "h"
    argv = ["hunt", "--variant", spec, "--budget", "20", "--episode-len", "6", "--seed", "2"]
    assert main([*argv, "--engine", "python", "--out", str(out), "--quiet"]) == 0
    df = pd.read_parquet(out / "hunt.parquet")
    assert set(df["variant"]) == {"file-page-share"} and (df["ops_run"] > 0).all()
