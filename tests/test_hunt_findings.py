"""Defects ``daxsim hunt`` found in the modelled kernel designs, each as the shrunk
reproducer the hunt wrote, replayed under the designs it concerns (README "Hunting defects")."""

from __future__ import annotations

import pytest

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
