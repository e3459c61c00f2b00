"""The agreement scripts on real kernels: every observation the kernel reported in the
session's boot equals what daxsim computes for the same script under the kernel's design.

Scripts: tests/kernel_suite.py's :data:`AGREEMENT_SCRIPTS` and :data:`AGREEMENT_POISON`
(scenarios/scripts/kernel: layout breaking by reflink, dedupe (also a failing one),
truncate and every fallocate mode; PMD and PTE faults on shared extents; dedupe of PMD-mapped
files; memory failure; unlink of a mapped or open file, CoW through an orphan's mapping and the
residue its eviction leaves), run in the one boot per kernel of the
``kernel_run`` fixture (6.1, 6.18, 7.3). Observations: check outcomes, the files at the end,
warning sites, fault counts by size, SIGBUS, memory-failure owners and the page state read
from the kernel (:func:`sim.kernel.compare.observations` and the page rows of
:func:`sim.kernel.compare.compare_rows`).

A difference is accepted only as one of :data:`KNOWN_GAPS`: differences the model does not
cover yet; they must still occur, so that closing one shows here. (PMD fallbacks agree: the
agent places every mapping in 2 MiB regions of its own, as daxsim does, so whether a fault
tries a PMD no longer depends on where the process's other mappings lie.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kernel_suite import AGREEMENT_POISON, AGREEMENT_SCRIPTS

from sim.kernel.compare import _page_rows, observations, run_daxsim

pytestmark = pytest.mark.slow

#: (kernel design or "*", script name, observation) -> why daxsim differs.
KNOWN_GAPS: dict = {}
_PAGE_ROWS = ("pages ", "phantom_pages", "share_degrees", "residue_pages", "page state")


@pytest.fixture(scope="module", params=["6.1", "6.18", "7.3"])
def suite(request, kernel_run):
    return kernel_run(request.param)


def test_agreement_scripts_agree_with_daxsim(suite):
    run = suite
    kernel = run.kernel
    wanted = {str(p) for p in (*AGREEMENT_SCRIPTS, *AGREEMENT_POISON)}
    seen, disagree = set(), {}
    for i, res in enumerate(run.scripts):
        if res.script not in wanted:
            continue
        seen.add(res.script)
        cmds = run.parsed[res.script]
        sim = run_daxsim(cmds, res.script, kernel.design)
        rows = observations(cmds, res, sim) + _page_rows(run, i, res, cmds)
        assert any(r[0] == "faults pte" for r in rows)
        assert any(r[0].startswith(_PAGE_ROWS) for r in rows), res.script  # pages read
        name = Path(res.script).name
        for obs, kv, dv, agree in rows:
            if agree:
                continue
            disagree[(kernel.design, name, obs)] = (kv, dv)
    assert seen == wanted
    known = {
        (kernel.design, n, o)
        for (d, n, o) in KNOWN_GAPS
        if d in ("*", kernel.design) and str(Path(AGREEMENT_SCRIPTS[0]).parent / n) in wanted
    }
    unexpected = set(disagree) - known
    assert unexpected == set(), {k: disagree[k] for k in unexpected}
    assert known - set(disagree) == set()


def test_layout_breaking_refaults_on_the_kernel(kernel_run):
    """The scripts exercise what they say: on every kernel of the suite, a read after the
    layout break faults again (more PTE faults than pages read before the break)."""
    for name in ("6.1", "7.3"):
        run = kernel_run(name)
        res = run.by_path[str(Path(AGREEMENT_SCRIPTS[0]).parent / "break-dedupe.xfsio")]
        assert res.faults["pte"] == 2 * 2 * 16  # two files, 16 pages each, read twice
        res = run.by_path[str(Path(AGREEMENT_SCRIPTS[0]).parent / "pmd-dedupe.xfsio")]
        assert res.faults["pmd"] == 4
