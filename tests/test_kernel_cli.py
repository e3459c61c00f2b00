"""``daxsim kernel run`` and ``daxsim kernel compare`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from kernel_suite import SCRIPTS

from sim.cli import main
from sim.kernel.compare import COLUMNS, run_daxsim
from sim.xfsio.parse import parse_script


@pytest.mark.parametrize("action", ["run", "compare"])
def test_a_malformed_script_is_refused_before_anything_boots(tmp_path, capsys, action):
    """Exit 2 naming FILE:LINE, no output written; the scripts are read before the kernel is
    even looked up (the kernel named here does not exist)."""
    good = SCRIPTS / "two-readers.xfsio"
    bad = tmp_path / "bad.xfsio"
    bad.write_text("open -f a\nmmap 0 4096\nmmap 3\n")
    out = tmp_path / "out.json"
    kernel = ["--kernel", "no-such-kernel"] if action == "run" else ["--kernels", "no-such"]
    argv = ["kernel", action, str(good), str(bad), *kernel, "--json", str(out)]
    if action == "compare":
        argv += ["--out", str(tmp_path / "cmp")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3: mmap 3: no such mapping" in err
    assert not out.exists()
    assert not (tmp_path / "cmp").exists()


def test_run_json_has_the_fields_of_issue_14(kernel_run):
    """The --json document of a run (here the session's 6.1 run of the suite)."""
    run = kernel_run("6.1")
    doc = json.loads(json.dumps(run.to_json()))
    k = run.kernel
    assert (doc["kernel"], doc["release"], doc["design"]) == (k.name, k.version, k.design)
    assert len(doc["scripts"]) == len(run.scripts)
    for s, d in zip(run.scripts, doc["scripts"], strict=True):
        assert d["script"] == s.script
        assert d["checks_passed"] == sum(1 for c in s.checks if c.ok and not c.model)
        assert d["checks_failed"] == sum(1 for c in s.checks if not c.ok and not c.model)
        assert set(d["faults"]) == {"pte", "pmd", "pmd_fallback"}
        assert d["md5"] == s.md5 and d["sigbus"] == s.sigbus
        assert d["lost_trace_events"] == 0  # the 16 MiB trace buffer held every fault
        for w in d["warnings"]:
            assert set(w) == {"file", "line", "function", "site"}


def test_compare_writes_the_table_and_prints_the_disagreements(tmp_path, capsys):
    """One kernel, one script: compare.parquet has one row per observation, the kernel's
    fault count is the one real-kernels.md gives (five PTE faults), daxsim's is what daxsim
    computes, and the exit status and the printed lines follow the rows that disagree."""
    script = SCRIPTS / "refault-punch.xfsio"
    out, js = tmp_path / "cmp", tmp_path / "rows.json"
    status = main(["kernel", "compare", str(script), "--kernels", "6.1", "--out", str(out),
                   "--json", str(js)])  # fmt: skip
    printed = capsys.readouterr().out
    table = pq.read_table(out / "compare.parquet")
    assert table.column_names == list(COLUMNS)
    rows = table.to_pylist()
    assert rows == json.loads(js.read_text())["rows"]
    assert {r["kernel"] for r in rows} == {"6.1"} and {r["design"] for r in rows} == {"cow-index"}
    pte = next(r for r in rows if r["observation"] == "faults pte")
    assert pte["kernel_value"] == "5"
    sim = run_daxsim(parse_script(Path(script).read_text(), str(script)), str(script), "cow-index")
    assert pte["daxsim_value"] == str(sim.faults["pte"])
    bad = [r for r in rows if not r["agree"]]
    assert status == (1 if bad else 0)
    for r in bad:
        assert (
            f"{r['observation']}: kernel {r['kernel_value']}, daxsim {r['daxsim_value']}" in printed
        )
    assert f"{len(rows) - len(bad)} of {len(rows)} observations agree" in printed
    table_md = (out / "agreement.md").read_text()
    assert f"| faults pte | {int(pte['agree'])}/1 |" in table_md
    checks = [r for r in rows if r["observation"].startswith("check ")]
    n_ok = sum(r["agree"] for r in checks)
    assert (f"| checks | {n_ok}/{len(checks)} |" in table_md) == bool(checks)


def test_daxsim_replays_the_hunts_invariants():
    """The README's reproducers name the hunt's invariants (association_truth...): daxsim's
    side of a comparison evaluates them as `daxsim xfsio` does."""
    text = "open -f f1\npwrite 0 4096\n@expect_invariant association_truth holds\n"
    sim = run_daxsim(parse_script(text, "r.xfsio"), "r.xfsio", "page-share")
    assert [(c.line, c.kind, c.ok) for c in sim.checks] == [(3, "expect_invariant", True)]


def test_compare_refuses_what_daxsim_cannot_run_before_booting(tmp_path, capsys):
    bad = tmp_path / "inv.xfsio"
    bad.write_text("open -f a\n@expect_invariant no_such_invariant holds\n")
    out = tmp_path / "cmp"
    assert main(["kernel", "compare", str(bad), "--kernels", "6.1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: @expect_invariant: unknown invariant 'no_such_invariant'" in err
    assert "script(s)..." not in err  # no kernel was started
    assert not out.exists()
