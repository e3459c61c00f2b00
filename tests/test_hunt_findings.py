"""Defects ``daxsim hunt`` found in the modelled kernel designs, each as the shrunk
reproducer the hunt wrote, replayed under the designs it concerns (README "Hunting defects")."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.hunt.invariants import runner_invariants
from sim.xfsio.runner import run_script

ORDER_MISMATCH = """\
@mkfs size=32m
open -f f2
pwrite -S 0x61 0 2097152
mmap -rw 0 2097152
mread 1167360 1
open -f f1
reflink f2 0 0 0
mmap -rw 0 4096
mread 0 1
"""


@pytest.mark.parametrize(
    "variant, rules, fires",
    [
        ("page-share", None, False),
        ("folio-share", None, False),
        ("folio-share-reset", None, False),
        ("folio-share", "6.2", True),
        ("folio-share-reset", "6.2", True),
    ],
)
def test_pte_share_of_a_pmd_folio_after_a_reflink(variant, rules, fires):
    """A finding the hunt once reported for v6.15, which the kernel does not reproduce: f2
    PMD-maps a 2 MiB extent (an order-9 folio), f1 reflinks it and PTE-maps one page. On
    v6.15+ the reflink breaks both files' layouts (``dax_break_layout`` deletes f2's PMD entry,
    the folio's last owner, so it splits back to order 0) and f1's shared PTE association
    finds an order-0 folio: no WARN. Under the ≤ 6.14 layout breaking (unmap only, the PMD
    entry stays) the association would count an order-0 entry on the order-9 folio and fire
    WARN_ON_ONCE(dax_entry_order(entry) != folio_order(folio)). page-share (v6.2-v6.14) has no
    folio order and no such WARN."""
    r = run_script(ORDER_MISMATCH, "t", variant, generation=rules)
    assert r.result.ok, [c.describe() for c in r.result.failed]
    assert r.dax.stats["pmd_faults"] == 1
    assert r.dax.mm.warnings.get("associate_order_mismatch", 0) == int(fires)


NO_SIGBUS = Path(__file__).parent.parent / "scenarios/scripts/hunt/folio-share-no_sigbus.xfsio"


@pytest.mark.parametrize(
    "variant, sigbus",
    [
        ("folio-share", True),
        ("folio-share-reset", True),
        ("page-share", False),
        ("cow-index", False),
    ],
)
def test_a_legal_pmd_read_over_a_clones_pte_folio_gets_sigbus_from_6_15(variant, sigbus):
    """The hunt's no_sigbus reproducer (scenarios/scripts/hunt): f0, a reflink of f2's 2 MiB
    extent, reads its first page through a 4 KiB mapping (an order-0 folio owned by f0);
    f2's PMD read over the same blocks associates its entry with that folio (the shared
    branch of dax_associate_entry, no dax_folio_init) and vmf_insert_folio_pmd() refuses it:
    SIGBUS on a legal read, on 6.18 and 7.3 alike. Up to v6.14 the PMD maps a pfn."""
    text = NO_SIGBUS.read_text()
    r = run_script(text, str(NO_SIGBUS), variant, invariants=runner_invariants())
    failed = {c.kind for c in r.result.failed}
    assert failed == (set() if sigbus else {"expect_errno", "expect_invariant"})
    assert r.dax.stats["pmd_sigbus"] == int(sigbus)


PTE_IN_SLOT = Path(__file__).parent.parent / "scenarios/scripts/hunt/page-share-no_warnings.xfsio"


@pytest.mark.parametrize(
    "variant, bug",
    [("page-share", True), ("cow-index", False), ("folio-share", False)],
)
def test_a_pte_read_under_a_pmd_entry_kept_by_a_reflink_bugs_the_eviction(variant, bug):
    """The hunt's page-share no_warnings reproducer: f1 PMD-maps its 2 MiB extent, a reflink
    shares it (up to v6.14 the layout break unmaps, the PMD entry stays) and f1 reads a page
    through a 16 KiB mapping: dax_insert_entry replaces the PMD entry through the PTE fault's
    order-0 xa_state (in the multi-index slot), and f1's eviction at its unlink finds 511
    pages in nrpages: clear_inode's BUG (6.12: kernel BUG at fs/inode.c:673). 6.0-6.1 replace
    only on a write fault; from 6.15 the reflink deletes the PMD entry."""
    r = run_script(
        PTE_IN_SLOT.read_text(), str(PTE_IN_SLOT), variant, invariants=runner_invariants()
    )
    assert r.result.ok == bug, [c.describe() for c in r.result.failed]
    assert r.dax.mm.warnings.get("clear_inode_nrpages", 0) == int(bug)
