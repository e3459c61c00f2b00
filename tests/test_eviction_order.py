"""The warnings of the suite's rig scripts do not hang on the order an unmount evicts inodes in.

An unmount evicts the inodes left in the cache in ``evict_inodes()`` (fs/inode.c, every
release): a walk of the superblock's inode list that promises no order, and disposes of what
it has gathered whenever it must reschedule. Under 6.1's design the WARN of
``dax_disassociate_entry()`` (fs/dax.c:404) fires when an inode's entry is deleted while its
page names another inode, so with two readers of one block it fires only if the first reader
is evicted before the second. tests/test_kernel_scripts.py compares the kernels' warning sites
with daxsim's in every ``make test``: a script whose sites depend on that order would fail
whenever a kernel takes another one. daxsim evicts in the order given here, every order of the
inodes the script leaves.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from kernel_suite import RIG_SCRIPTS

from sim.hunt.invariants import runner_invariants
from sim.xfsio.parse import parse_script
from sim.xfsio.runner import RIG_STRIPE_UNIT_BYTES, XfsioRunner

DESIGNS = ("cow-index", "page-share", "folio-share", "folio-share-reset")


def _runner(path: Path, design: str) -> XfsioRunner:
    """The script run in daxsim as ``daxsim kernel compare`` runs it, up to its unmount."""
    r = XfsioRunner(
        design,
        filename=str(path),
        invariants=runner_invariants(),
        stripe_unit_bytes=RIG_STRIPE_UNIT_BYTES,
    )
    r.run(parse_script(path.read_text(), str(path)))
    return r


def warning_sites_by_order(path: Path, design: str) -> dict[tuple[int, ...], list[str]]:
    """Eviction order of the inodes with DAX entries at the end -> the script's warning sites
    when the unmount evicts them in that order."""
    inodes = sorted(_runner(path, design).dax.spaces)
    out = {}
    for order in itertools.permutations(inodes):
        r = _runner(path, design)
        r.dax.unmount(order=order)
        out[order] = sorted(k[5:] for k, v in r.summary().items() if k.startswith("warn_") and v)
    return out


def test_the_unmount_evicts_in_the_order_given():
    """Two readers of one block, both left to the unmount (two-readers.xfsio as it was): 6.1's
    disassociate WARN when the first reader goes first, none when the second does."""
    text = "\n".join(
        [
            "@mkfs size=32m",
            "open -f f2",
            "pwrite -S 0x61 0 64k",
            "fsync",
            "open -f f1",
            "reflink f2",
            "file 0",
            "mmap -r 0 64k",
            "mread 0 4096",
            "file 1",
            "mmap -r 0 64k",
            "mread 0 4096",
            "munmap",
            "munmap",
            "close",
            "close",
        ]
    )
    cmds = parse_script(text + "\n", "two-readers-at-unmount")
    sites = {}
    for first in ("f2", "f1"):
        r = XfsioRunner("cow-index", stripe_unit_bytes=RIG_STRIPE_UNIT_BYTES)
        r.run(cmds)
        r.dax.unmount(order=[r.dax.fs.lookup(first)])
        sites[first] = sorted(k[5:] for k, v in r.summary().items() if k.startswith("warn_") and v)
    assert sites == {
        "f2": ["associate_mapping_set", "disassociate_foreign_mapping"],
        "f1": ["associate_mapping_set"],
    }


@pytest.mark.parametrize("design", DESIGNS)
@pytest.mark.parametrize("path", RIG_SCRIPTS, ids=lambda p: p.name)
def test_rig_scripts_warn_whatever_the_eviction_order(path, design):
    by_order = warning_sites_by_order(path, design)
    assert len({tuple(v) for v in by_order.values()}) == 1, by_order
