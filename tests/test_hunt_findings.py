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
    "variant, fires", [("page-share", False), ("folio-share", True), ("folio-share-reset", True)]
)
def test_pte_share_of_a_pmd_folio_warns_order_mismatch_in_v6_15(variant, fires):
    """The hunt's v6.15 finding (README): f2 PMD-maps a 2 MiB extent (an order-9 folio),
    f1 reflinks it and PTE-maps one page: the shared association of an order-0 entry with an
    order-9 folio fires WARN_ON_ONCE(dax_entry_order(entry) != folio_order(folio)).
    page-share (v6.2-v6.14) has no folio order and no such WARN."""
    r = run_script(ORDER_MISMATCH, "t", variant)
    assert r.result.ok, [c.describe() for c in r.result.failed]
    assert r.dax.stats["pmd_faults"] == 1
    assert r.dax.mm.warnings.get("associate_order_mismatch", 0) == int(fires)
