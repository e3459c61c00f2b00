"""A script the kernel oopses in (a BUG: clear_inode's at an unmount kills the task with the
``i_pages`` lock held) costs the run only that script: the rig records the oops as the
script's observation and boots again for the scripts after it (:func:`sim.kernel.guest.run_job`),
and ``kernel compare`` says where the BUG stopped the script on both sides. These tests drive
the rig's logic with boots stood in for; the boots of tests/test_pte_in_pmd_slot.py and
``make kernel-check`` run it on the kernels."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sim.kernel import guest
from sim.kernel.compare import DaxsimObservation, observations
from sim.kernel.guest import GuestOutput, GuestScript, JobResult
from sim.kernel.run import ScriptResult, crash_text, crash_where
from sim.xfsio.parse import parse_script

BUG = "kernel BUG at fs/inode.c:753!"


def _fake_boots(monkeypatch, crash_in: dict):
    """Stand in for the boots: boot ``n`` runs its scripts up to the one named in
    ``crash_in`` (which crashes); returns the list of each boot's script names and flags."""
    calls = []

    def boot(kernel, scripts, **kw):
        calls.append(([s.name for s in scripts], kw["want_btf"]))
        outs, crashed = [], None
        for i, s in enumerate(scripts):
            line = BUG if s.name in crash_in else None
            outs.append(GuestOutput(s.name, "", "", "", 0 if line is None else 139, crash=line))
            if line is not None:
                crashed = i
                break
        job = JobResult(kernel=kernel, scripts=outs, boot_log=f"boot {len(calls)}", timed_out=False)
        job.total_s = 1.0
        return job, crashed

    monkeypatch.setattr(guest, "_boot", boot)
    return calls


def _scripts(*names):
    return [GuestScript(n, b"") for n in names]


def test_a_crash_boots_again_for_the_scripts_after_it(monkeypatch):
    calls = _fake_boots(monkeypatch, {"b"})
    job = guest.run_job("k", _scripts("a", "b", "c", "d"), want_btf=True)
    assert calls == [(["a", "b", "c", "d"], True), (["c", "d"], False)]
    assert [o.name for o in job.scripts] == ["a", "b", "c", "d"]
    assert [o.crash for o in job.scripts] == [None, BUG, None, None]
    assert (job.boots, job.total_s, job.boot_log) == (2, 2.0, "boot 1\nboot 2")


def test_crashes_in_a_row_and_a_crash_in_the_last_script(monkeypatch):
    calls = _fake_boots(monkeypatch, {"a", "b", "d"})
    job = guest.run_job("k", _scripts("a", "b", "c", "d"))
    assert [c[0] for c in calls] == [["a", "b", "c", "d"], ["b", "c", "d"], ["c", "d"]]
    assert [o.crash is not None for o in job.scripts] == [True, True, False, True]
    assert job.boots == 3


def test_no_crash_is_one_boot(monkeypatch):
    calls = _fake_boots(monkeypatch, set())
    job = guest.run_job("k", _scripts("a", "b"))
    assert len(calls) == 1 and job.boots == 1 and len(job.scripts) == 2


@pytest.mark.parametrize(
    "line",
    [
        "[   12.5] kernel BUG at fs/inode.c:673!",
        "[   12.5] Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
        "[    3.1] BUG: unable to handle page fault for address: ffff888000000000",
    ],
)
def test_oops_lines_are_recognised(line):
    assert guest.OOPS_LINE.search(line)


def test_warnings_are_not_oopses():
    assert not guest.OOPS_LINE.search("WARNING: CPU: 0 PID: 136 at fs/dax.c:380 dax_insert_entry")


SCRIPT = """@mkfs size=32m
open -f f
pwrite -S 0x61 0 4096
@expect_bytes 0 61
open -f g
"""


def test_where_the_agent_died():
    cmds = parse_script(SCRIPT, "<t>")
    reports = [{"line": 1, "op": "mkfs"}, {"line": 2, "op": "open"}, {"line": 3, "op": "pwrite"}]
    assert crash_where(cmds, reports) == "line 5"  # the first command it did not report
    assert crash_where(cmds, reports + [{"line": 5}, {"line": -1, "op": "final"}]) == (
        "the unmount"
    )


def test_completed_agrees_when_both_sides_bug_at_the_unmount():
    cmds = parse_script(SCRIPT, "<t>")
    res = ScriptResult(script="<t>", error=crash_text("clear_inode_nrpages", "the unmount"))
    obs = DaxsimObservation([], {}, {}, [], {}, False, {}, {})
    row = lambda sim: next(r for r in observations(cmds, res, sim) if r[0] == "completed")  # noqa: E731
    assert row(obs) == ("completed", res.error, "yes", False)  # daxsim without the BUG
    obs.completed = crash_text("clear_inode_nrpages", "the unmount")
    assert row(obs)[1:] == (res.error, res.error, True)
    obs.completed = crash_text("clear_inode_nrpages", "line 5")
    assert row(obs)[3] is False


def test_the_kernels_crash_becomes_the_scripts_error(monkeypatch, tmp_path):
    """run_scripts: the oops line's site (KNOWN_SITES: fs/inode.c:753 on 6.18.15) and where
    the agent died (its final report came: at the unmount) make the error."""
    from sim.kernel import run as krun

    out = GuestOutput(
        "s000-t",
        '{"line": 1, "op": "mkfs", "ok": true}\n{"line": -1, "op": "final", "ok": true}\n',
        f"[ 9.0] {BUG}\n",
        "",
        139,
        crash=BUG,
    )

    def run_job(kernel, jobs, **kw):
        return JobResult(kernel=kernel, scripts=[out], boot_log="", timed_out=False)

    monkeypatch.setattr(guest, "run_job", run_job)
    kernel = SimpleNamespace(
        version="6.18.15", work_dir=tmp_path, name="6.18", design="folio-share"
    )
    monkeypatch.setattr(krun, "prepare_scripts", lambda paths, pause=False: [
        ("t.xfsio", "s000-t", parse_script("@mkfs size=32m\n", "t.xfsio"), b"")
    ])  # fmt: skip
    r = krun.run_scripts(kernel, ["t.xfsio"]).scripts[0]
    assert r.crash == BUG
    assert r.error == "kernel BUG clear_inode_nrpages at the unmount"
    assert [w["site"] for w in r.warnings] == ["clear_inode_nrpages"]
