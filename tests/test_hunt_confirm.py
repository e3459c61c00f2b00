"""Hunt findings confirmed on real kernels (``daxsim hunt --confirm``, sim/hunt/confirm.py),
and the v6.15 phantom made visible (scenarios/scripts/kernel/phantom-visible.xfsio).

The tests that need a kernel read the suite's one boot per kernel (tests/kernel_suite.py:
HUNT_REPRODUCERS and PHANTOM_VISIBLE run there)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from kernel_suite import HUNT, PHANTOM_VISIBLE

from sim.cli import main
from sim.hunt.confirm import (
    CONFIRMED,
    NO_KERNEL,
    confirm_rows,
    confirmation_script,
    daxsim_at_end,
    judge,
    judge_script,
    load_check_lines,
)
from sim.hunt.report import HuntRow
from sim.kernel.run import guest_name
from sim.xfsio.parse import parse_script

RESIDUE = HUNT / "cow-index-nothing_left_behind.xfsio"
TWO_OWNERS = HUNT / "cow-index-no_warnings.xfsio"
PHANTOM = HUNT / "folio-share-association_truth.xfsio"
STALE_PTE = HUNT / "cow-index-data_integrity.xfsio"
PUT_REFCOUNT = HUNT / "folio-share-reset-no_warnings.xfsio"
NO_SIGBUS = HUNT / "folio-share-no_sigbus.xfsio"


def _expectation_holds(path: Path, design: str) -> bool:
    """daxsim's verdict on the script's ``@expect_invariant`` line."""
    dax_checks = []
    from sim.hunt.invariants import runner_invariants
    from sim.xfsio.runner import XfsioRunner

    r = XfsioRunner(design, filename=str(path), invariants=runner_invariants())
    r.run(parse_script(path.read_text(), str(path)))
    r.close()
    dax_checks = [c for c in r.result.checks if c.kind == "expect_invariant"]
    return len(dax_checks) == 1 and dax_checks[0].ok


@pytest.mark.parametrize(("src", "design"), [(RESIDUE, "cow-index"), (PHANTOM, "folio-share")])
@pytest.mark.parametrize("pad", [0, 64 << 20])
def test_the_confirmation_script_keeps_daxsims_verdict(tmp_path, src, design, pad):
    """Closing the files, the statfs and the padding file change nothing daxsim computes:
    the reproducer's invariant is still violated, by the same residue or phantom."""
    out = confirmation_script(str(src), tmp_path, pad_bytes=pad)
    text = out.read_text().splitlines()
    body = [ln for ln in text if ln and not ln.startswith("#")]
    at = next(i for i, ln in enumerate(body) if ln.startswith("@expect_invariant"))
    words = [ln.split()[:1] for ln in src.read_text().splitlines()]
    opens = words.count(["open"]) - words.count(["close"])  # still open at the end
    gone = ["@unlink .confirm-pad"] if pad else []
    assert body[at - opens - 1 - len(gone) : at] == ["close"] * opens + gone + ["@statfs confirm"]
    assert (".confirm-pad" in out.read_text()) == (pad > 0)
    assert _expectation_holds(out, design)
    before = daxsim_at_end(parse_script(src.read_text(), str(src)), str(src), design)
    after = daxsim_at_end(parse_script(out.read_text(), str(out)), str(out), design)
    for dax in (before, after):
        assert (int(dax.mm.residue_pages()), int(dax.mm.phantom_pages())) == (
            (1, 0) if design == "cow-index" else (0, 1)
        )


def _row(variant, invariant, status, reproducer):
    return HuntRow(variant, invariant, status, 1, 1, 1, 10, 0, str(reproducer), "")


def test_only_findings_of_built_in_designs_are_replayed(tmp_path):
    rows = [
        _row("single-owner", "no_warnings", "violated", RESIDUE),
        _row("cow-index", "memory_failure_fallback", "limit", RESIDUE),
        _row("cow-index", "data_integrity", "none", ""),
        _row("my-design", "no_warnings", "violated", RESIDUE),
        _row("page-share", "nothing_left_behind", "violated", RESIDUE),
    ]
    got = confirm_rows(rows, kernels=[], work_dir=tmp_path)
    assert [c.status for c in got] == [NO_KERNEL, "", "", "", NO_KERNEL]
    assert all(c.kernel == "" for c in got)


def test_hunt_confirm_adds_the_kernel_column_and_parquet_fields(tmp_path, monkeypatch, capsys):
    """No kernel in the cache: every finding says so, in the table and in hunt.parquet."""
    monkeypatch.setenv("DAXSIM_CACHE", str(tmp_path / "empty-cache"))
    out = tmp_path / "h"
    args = ["hunt", "--variant", "single-owner", "--budget", "200", "--engine", "python"]
    assert main([*args, "--confirm", "--quiet", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "on a kernel" in table.splitlines()[0]
    assert "no warnings: no kernel cached" in table
    df = pd.read_parquet(out / "hunt.parquet")
    found = df[df.status == "violated"]
    assert len(found) > 0
    assert set(found.confirmation) == {NO_KERNEL}
    assert df[df.status != "violated"].confirmation.isna().all()
    assert main([*args, "--quiet", "--out", str(tmp_path / "h2")]) == 0
    assert "on a kernel" not in capsys.readouterr().out


def _warn(line: int, site):
    return {"file": "fs/dax.c", "line": line, "function": "dax_associate_entry", "site": site}


@pytest.mark.parametrize(
    ("warnings", "status", "evidence"),
    [
        (
            [_warn(404, "disassociate_foreign_mapping"), _warn(380, "associate_mapping_set")],
            CONFIRMED,
            "WARN fs/dax.c:380 dax_associate_entry",
        ),
        (
            [_warn(404, "disassociate_foreign_mapping")],
            "not reproduced",
            "only WARN fs/dax.c:404 dax_associate_entry",
        ),
        ([], "not reproduced", "no WARN"),
    ],
)
def test_a_warning_finding_needs_a_warn_at_a_site_daxsim_fired(warnings, status, evidence):
    """daxsim fires associate_mapping_set on the reproducer: only a kernel WARN whose line
    holds that condition confirms it."""
    from sim.hunt.confirm import judge
    from sim.kernel.run import ScriptResult

    path = str(TWO_OWNERS)
    dax = daxsim_at_end(parse_script(TWO_OWNERS.read_text(), path), path, "cow-index")
    assert {s for s, c in dax.mm.warnings.items() if c} == {"associate_mapping_set"}
    res = ScriptResult(script=path, warnings=warnings)
    assert judge("no_warnings", res, None, None, "", "cow-index", dax) == (status, evidence)


def test_the_stale_pte_finding_is_replayed_as_a_load(tmp_path):
    """A data_integrity finding whose mapping is stale (the 6.0 stale PTE) is confirmed by a
    load through that mapping: the confirmation script selects it, loads the stale page and
    expects what read(2) reads; daxsim's own check of that line fails (the load reads the
    old block) and the invariant stays violated. The same lines on page-share pass."""
    from sim.hunt.invariants import runner_invariants
    from sim.xfsio.runner import XfsioRunner

    lines = load_check_lines(str(STALE_PTE), "cow-index")
    assert lines is not None and lines[0].startswith("mmap ")
    assert lines[1].startswith("mread -v ") and lines[2].startswith("@expect_bytes ")
    assert load_check_lines(str(STALE_PTE), "page-share") is None  # no stale mapping there
    out = confirmation_script(str(STALE_PTE), tmp_path, pad_bytes=64 << 20, load_check=lines)
    assert _expectation_holds(out, "cow-index")
    for design, ok in (("cow-index", False), ("page-share", True)):
        r = XfsioRunner(design, filename=str(out), invariants=runner_invariants())
        r.run(parse_script(out.read_text(), str(out)))
        loads = [c for c in r.result.checks if c.kind == "expect_bytes"]
        assert [c.ok for c in loads] == [ok]


@pytest.mark.parametrize(("ok", "status"), [(False, CONFIRMED), (True, "not reproduced")])
def test_a_load_finding_needs_the_kernels_load_to_differ(ok, status):
    from sim.kernel.run import ScriptResult
    from sim.xfsio.runner import Check

    res = ScriptResult(script="x", checks=[Check(21, "expect_bytes", ok, "70707070", "61616161")])
    got = judge("data_integrity", res, None, None, "", "cow-index", None)
    assert got[0] == status
    assert "61616161" in got[1]


def test_a_sigbus_finding_needs_the_kernels_sigbus_on_the_same_access():
    """no_sigbus: confirmed when the reproducer's ``@expect_errno SIGBUS`` (the line the hunt
    writes after the refused access) holds on the kernel; the WARNs are the evidence."""
    from sim.hunt.confirm import judge
    from sim.kernel.run import ScriptResult
    from sim.xfsio.runner import Check

    warns = [
        _warn(457, "associate_order_mismatch"),
        {"file": "mm/huge_memory.c", "line": 1521, "function": "vmf_insert_folio_pmd",
         "site": "pmd_folio_order"},
    ]  # fmt: skip
    hit = Check(17, "expect_errno", True, "SIGBUS", "SIGBUS")
    miss = Check(17, "expect_errno", False, "SIGBUS", "success")
    ok = ScriptResult(script="x", warnings=warns, checks=[hit], sigbus=True)
    status, evidence = judge("no_sigbus", ok, None, None, "", "folio-share", None)
    assert status == CONFIRMED
    assert evidence == (
        "SIGBUS at line 17; WARN fs/dax.c:457 dax_associate_entry; "
        "WARN mm/huge_memory.c:1521 vmf_insert_folio_pmd"
    )
    no = ScriptResult(script="x", checks=[miss])
    assert judge("no_sigbus", no, None, None, "", "folio-share", None) == (
        "not reproduced",
        "no SIGBUS",
    )


# ------------------------------------------------------------------ on the kernels (one boot)
def _judged(run, src: Path, invariant: str):
    path = run.hunt[str(src)]
    name = guest_name(run.paths.index(path), path)
    assert run.capture.errors.get(name) is None
    return judge_script(invariant, path, run, run.by_path[path], run.capture, name)


def test_two_owners_warning_is_confirmed_on_6_1(kernel_run):
    run = kernel_run("6.1")
    status, evidence = _judged(run, TWO_OWNERS, "no_warnings")
    assert (status, evidence) == (CONFIRMED, "WARN fs/dax.c:380 dax_associate_entry")


def test_the_seeds_residue_is_confirmed_on_6_1(kernel_run):
    run = kernel_run("6.1")
    status, evidence = _judged(run, RESIDUE, "nothing_left_behind")
    assert (status, evidence) == (CONFIRMED, "residue_pages 1 (daxsim 1)")


def test_the_v6_15_phantom_is_confirmed_on_6_18(kernel_run):
    run = kernel_run("6.18")
    status, evidence = _judged(run, PHANTOM, "association_truth")
    assert (status, evidence) == (CONFIRMED, "phantom_pages 1 (daxsim 1)")


def test_the_phantom_turns_a_later_shared_pmd_read_into_sigbus_on_6_18(kernel_run):
    """Without the reset, each stale head page makes the PMD fault of a later reflinked file
    take dax_associate_entry's shared branch on an order-0 folio: the order WARN in fs/dax.c,
    vmf_insert_folio_pmd's WARN, and SIGBUS for a legal read."""
    r = kernel_run("6.18").by_path[str(PHANTOM_VISIBLE)]
    assert r.error is None
    assert r.sigbus
    sites = {(w["file"], w["function"]) for w in r.warnings}
    assert ("fs/dax.c", "dax_insert_entry") in sites
    assert ("mm/huge_memory.c", "vmf_insert_folio_pmd") in sites
    sigbus_checks = [c for c in r.checks if c.kind == "expect_errno"]
    assert len(sigbus_checks) == 3 and all(c.ok for c in sigbus_checks)


def test_with_the_reset_the_same_reads_map_pmds_on_7_3(kernel_run):
    r = kernel_run("7.3").by_path[str(PHANTOM_VISIBLE)]
    assert r.error is None
    assert not r.sigbus
    assert r.faults["pmd"] == 3
    assert not [w for w in r.warnings if w["file"] == "mm/huge_memory.c"]


def test_the_stale_pte_is_confirmed_on_6_1(kernel_run):
    """The 6.0 data corruption: a load through the mapping reads the old block."""
    status, evidence = _judged(kernel_run("6.1"), STALE_PTE, "data_integrity")
    assert status == CONFIRMED, evidence
    assert "a load reads" in evidence


def test_the_folio_put_refcount_warn_is_confirmed_on_7_3(kernel_run):
    """dax_folio_put's refcount WARN (fs/dax.c:452) on the hunt's reproducer."""
    status, evidence = _judged(kernel_run("7.3"), PUT_REFCOUNT, "no_warnings")
    assert status == CONFIRMED, evidence
    assert "dax_folio_put" in evidence


@pytest.mark.parametrize("series", ["6.18", "7.3"])
def test_the_sigbus_finding_is_confirmed_on_6_18_and_7_3(kernel_run, series):
    """The hunt's no_sigbus reproducer: a clone's PTE read makes the extent's first folio
    order 0, the original's PMD read gets SIGBUS on both folio kernels, with the order WARN of
    dax_associate_entry and vmf_insert_folio_pmd's (the reset of 7.1 changes nothing: no
    final put is involved)."""
    run = kernel_run(series)
    status, evidence = _judged(run, NO_SIGBUS, "no_sigbus")
    assert status == CONFIRMED, evidence
    assert evidence.startswith("SIGBUS at line ")
    assert "vmf_insert_folio_pmd" in evidence and "dax_" in evidence


def test_a_bug_confirms_a_no_warnings_finding_though_the_script_stopped():
    """clear_inode's BUG stops the reproducer (the rig kills the guest after it, the script's
    error says so): its splat, at a site daxsim counted, confirms the no_warnings finding; a
    script stopped without such a BUG confirms nothing."""
    from types import SimpleNamespace

    from sim.kernel.run import ScriptResult

    bug = {"file": "fs/inode.c", "line": 673, "function": "clear_inode",
           "site": "clear_inode_nrpages"}  # fmt: skip
    dax = SimpleNamespace(mm=SimpleNamespace(warnings={"clear_inode_nrpages": 1}))
    res = ScriptResult(
        script="x",
        warnings=[bug],
        crash="kernel BUG at fs/inode.c:673!",
        error="kernel BUG clear_inode_nrpages at line 16",
    )
    assert judge("no_warnings", res, None, None, "", "page-share", dax) == (
        CONFIRMED,
        "BUG fs/inode.c:673 clear_inode",
    )
    res.crash = None  # stopped some other way: not judged
    assert judge("no_warnings", res, None, None, "", "page-share", dax)[0] == "not reproduced"
