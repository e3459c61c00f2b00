"""Scripts on real kernels (Linux 6.1 and 7.3 under QEMU with emulated pmem): every line type
of the format runs there, the checks hold, and the kernel agrees with daxsim.

The runs are the session's one boot per kernel (the ``kernel_run`` fixture, tests/conftest.py,
over tests/kernel_suite.py's scripts; tests/test_kernel_rig.py checks the warnings and fault
counts of real-kernels.md on the same runs). What the rig reports is compared with facts
(the xfstests golden values, the format's README, real-kernels.md: reflinked inodes loaded
without DAX on 6.0-6.1) and with what daxsim computes for the same script under the kernel's
design. Disagreements with daxsim that are known (issue 15 fixes the model) are listed in
:data:`KNOWN_DISAGREEMENTS` and must still occur, so that fixing one shows here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from kernel_suite import CRASHES, KERNEL_SUITE

from sim.kernel.compare import observations, run_daxsim
from sim.xfsio.parse import COMMANDS

pytestmark = pytest.mark.slow

#: (kernel design, script file name, observation) -> why daxsim differs (issue 15).
KNOWN_DISAGREEMENTS = {
    **{
        (design, "residue-visible.xfsio", obs): (
            "XFS keeps more blocks than daxsim for its log, metadata and reserve pool, so a "
            "file written until ENOSPC ends shorter on the kernel"
        )
        for design in ("cow-index", "folio-share-reset")
        for obs in ("size f3", "md5 f3")
    },
    **{
        ("cow-index", "xfs-551.xfsio", obs): (
            "Linux 6.0-6.1 load an already reflinked inode without DAX "
            "(xfs_inode_supports_dax), so after @cycle_mount the poisoned page is page "
            "cache: dropped, no SIGBUS; daxsim keeps the files DAX"
        )
        for obs in (
            "check 31 expect_sigbus",
            "check 46 expect_sigbus",
            "sigbus",
            "poison 29",
            "poison 43",
            "warning sites",
        )
    },
}
#: Observations compared here: check outcomes and the files at the end (fault counts are
#: compared with the kernel facts below; daxsim does not count them like the kernel yet).
_COMPARED = re.compile(r"^(check |model |size |md5 |sigbus$|poison |warning sites$)")


@pytest.fixture(scope="module", params=sorted(KERNEL_SUITE))
def suite(request, kernel_run):
    run = kernel_run(request.param)
    return run.kernel, run, run.parsed


def test_every_script_runs_to_its_end(suite):
    """Every script but those the kernel BUGs in (tests/test_pte_in_pmd_slot.py)."""
    kernel, run, _parsed = suite
    assert not run.timed_out
    crashes = {str(p) for p in CRASHES.get(kernel.name, [])}
    assert [
        (s.script, s.error, s.exit_status)
        for s in run.scripts
        if (s.error or s.exit_status) and s.script not in crashes
    ] == []
    assert {s.script for s in run.scripts if s.crash} == crashes


def test_every_line_type_runs_on_the_kernel(suite):
    """Each line type of the format is in some script of the suite, and each line of every
    script was run by the agent (a report) or evaluated on the host (a check, or listed as
    not observable on a kernel)."""
    _kernel, run, parsed = suite
    used = {c.name for cmds in parsed.values() for c in cmds}
    assert set(COMMANDS) - used == set()
    for s in run.scripts:
        reported = {int(r["line"]) for r in s.reports}
        checked = {c.line for c in s.checks}
        unobserved = {int(re.search(r":(\d+): ", u).group(1)) for u in s.unobserved}
        for c in parsed[s.script]:
            if c.name in ("@scratch_dev_fill", "@expect_errno", "@expect_sigbus"):
                continue  # state for the next @mkfs / evaluated with the command before
            if c.name.startswith(("@expect", "@final", "@model")):
                assert c.line in checked | unobserved, (s.script, c.text)
            elif c.name != "mmap" or c.args:
                assert c.line in reported, (s.script, c.text)


def test_content_checks_hold(suite):
    """The xfstests golden values and the format's facts hold on the kernel, except the
    memory failure of xfs/551 on 6.0-6.1 (a reflinked inode loaded after a mount is not DAX
    there, so no SIGBUS)."""
    kernel, run, _parsed = suite
    no_dax_after_mount = tuple(int(x) for x in kernel.version.split(".")[:2]) in ((6, 0), (6, 1))
    for s in (s for s in run.scripts if s.script not in run.own_checks):
        failed = [
            (c.line, c.kind)
            for c in s.checks
            if not c.ok and not c.model and c.kind != "expect_invariant"
        ]
        if Path(s.script).name == "xfs-551.xfsio" and no_dax_after_mount:
            assert failed == [(31, "expect_sigbus"), (46, "expect_sigbus")]
            assert s.faults["pte"] + s.faults["pmd"] == 0  # no DAX fault at all
        else:
            assert failed == [], s.script
        assert s.counts()["checks_passed"] + s.counts()["checks_failed"] == sum(
            1 for c in s.checks if not c.model
        )


def test_kernel_and_daxsim_agree(suite):
    """Every check's outcome, every file at the end, SIGBUS and the warning sites, as the
    kernel reported them and as daxsim computes them under the kernel's design; the known
    disagreements (issue 15) must still be there."""
    kernel, run, parsed = suite
    disagree = {}
    for s in (s for s in run.scripts if s.script not in run.own_checks):
        sim = run_daxsim(parsed[s.script], s.script, kernel.design)
        for obs, kv, dv, agree in observations(parsed[s.script], s, sim):
            if _COMPARED.match(obs) and not agree:
                disagree[(kernel.design, Path(s.script).name, obs)] = (kv, dv)
    known = {k for k in KNOWN_DISAGREEMENTS if k[0] == kernel.design}
    assert set(disagree) - known == set(), {k: disagree[k] for k in set(disagree) - known}
    assert known - set(disagree) == set()
