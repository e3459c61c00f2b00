"""The scripts every real kernel of the test suite runs, in one boot per kernel.

Booting a kernel under TCG costs 20-40 s, so the whole suite boots each kernel once: every test
that needs a kernel's behaviour adds its scripts to :data:`KERNEL_SUITE` and reads its results
from the session fixture ``kernel_run`` (tests/conftest.py), looked up by script path.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scenarios" / "scripts" / "kernel"

#: The observations of real-kernels.md as scripts (scenarios/scripts/kernel).
RIG_SCRIPTS = [
    SCRIPTS / "two-readers.xfsio",
    SCRIPTS / "folio-order.xfsio",
    SCRIPTS / "refault-punch.xfsio",
    SCRIPTS / "refault-reflink.xfsio",
    SCRIPTS / "residue-visible.xfsio",
]

#: Scripts whose struct pages tests/test_kernel_pagestate_guest.py reads. What a script leaves
#: in the struct pages (6.1's residue, 6.18's phantoms) would outlive its filesystem; the guest
#: re-initialises them before each script, which the test checks after these two.
PAGESTATE_RESIDUE = SCRIPTS / "pagestate-residue.xfsio"
PAGESTATE_PMD = SCRIPTS / "pagestate-pmd.xfsio"
PAGESTATE_PHANTOM = SCRIPTS / "pagestate-phantom.xfsio"

CONFORMANCE = ROOT.parent / "shared" / "conformance" / "xfstests"
if not CONFORMANCE.is_dir():
    CONFORMANCE = Path("/work/shared/conformance/xfstests")
#: Conformance cases (read from the shared folder, never copied): a reflink checked with
#: _verify_reflink (110), a dedupe that must fail (122), a plain mmap CoW with md5s (140),
#: free-block deltas (151) and the memory failure of a shared block (551: it poisons pmem
#: pages, so it runs after the others).
CONFORMANCE_SCRIPTS = [
    CONFORMANCE / c
    for c in (
        "generic-110.xfsio",
        "generic-122.xfsio",
        "generic-140.xfsio",
        "generic-151.xfsio",
        "xfs-551.xfsio",
    )
]
#: Scripts whose every observation (checks, files, warning sites, fault counts by size,
#: SIGBUS, memory-failure owners, page state) is compared with daxsim on each kernel by
#: tests/test_kernel_agreement.py: layout breaking, PMD/PTE mixes on shared extents, dedupe,
#: memory failure, unlink of mapped files and where extents land on a stripe-unit filesystem.
AGREEMENT_SCRIPTS = [
    SCRIPTS / f"{n}.xfsio"
    for n in (
        "pmd-shared-two",
        "pmd-then-pte-shared",
        "pmd-sigbus-after",
        "pmd-sigbus-write",
        "pmd-dedupe",
        "pmd-punch-fallback",
        "break-reflink-dest",
        "break-dedupe",
        "break-dedupe-ebade",
        "break-truncate-up",
        "break-falloc-modes",
        "unlink-mapped",
        "unlink-mapped-free",
        "unlink-open",
        "unlink-mapped-reflink-cow",
        "unlink-mapped-residue",
        "stale-pte-cow-write",
        "stale-pte-next-owner",
        "stale-pmd-cow-write",
        "stripe-first-extent",
        "stripe-append",
        "stripe-fragmented",
    )
]
#: Agreement scripts that poison pmem pages: run after the conformance cases (as xfs/551).
AGREEMENT_POISON = [
    SCRIPTS / f"{n}.xfsio"
    for n in ("hwpoison-private", "hwpoison-refault", "hwpoison-later-faults")
]
#: Written by :func:`run_suite` (kernel_helpers.every_line_script: expectations computed from
#: the format's README): every line type of the format, @hwpoison included.
EVERY_LINE = "every-line.xfsio"

#: kernel series -> scripts run in its one boot, then the every-line script, then
#: :data:`AFTER_EVERY_LINE`. 6.18 is the folio-share kernel without dax_folio_reset_order():
#: the page-state scripts and two readers (the agreement scripts after the phantoms).
KERNEL_SUITE: dict[str, list[Path]] = {
    "6.1": [
        PAGESTATE_RESIDUE,
        *RIG_SCRIPTS,
        PAGESTATE_PMD,
        *AGREEMENT_SCRIPTS,
        *CONFORMANCE_SCRIPTS,
        *AGREEMENT_POISON,
    ],
    "7.3": [
        PAGESTATE_RESIDUE,
        *RIG_SCRIPTS,
        PAGESTATE_PMD,
        *AGREEMENT_SCRIPTS,
        *CONFORMANCE_SCRIPTS,
        *AGREEMENT_POISON,
    ],
    "6.18": [PAGESTATE_RESIDUE, SCRIPTS / "two-readers.xfsio", PAGESTATE_PMD],
}
#: The phantom made visible (a SIGBUS and two WARNs on 6.18, none on 7.3):
#: tests/test_hunt_confirm.py.
PHANTOM_VISIBLE = SCRIPTS / "phantom-visible.xfsio"
#: Scripts run after the every-line script (what they leave would change earlier ones).
AFTER_EVERY_LINE: dict[str, list[Path]] = {k: [PAGESTATE_PHANTOM] for k in KERNEL_SUITE}
AFTER_EVERY_LINE["6.18"].append(PHANTOM_VISIBLE)
AFTER_EVERY_LINE["7.3"].append(PHANTOM_VISIBLE)
#: 6.18 runs the agreement scripts after the phantoms: each script starts from fresh struct
#: pages, so none of them counts an earlier script's phantom as shared.
AFTER_EVERY_LINE["6.18"] += [*AGREEMENT_SCRIPTS, *AGREEMENT_POISON]
#: Hunt reproducers (scenarios/scripts/hunt) replayed last, as ``daxsim hunt --confirm``
#: replays them (sim.hunt.confirm.confirmation_script, placed past the earlier scripts' blocks):
#: tests/test_hunt_confirm.py judges them.
HUNT = ROOT / "scenarios" / "scripts" / "hunt"
HUNT_REPRODUCERS: dict[str, list[Path]] = {
    "6.1": [
        HUNT / "cow-index-no_warnings.xfsio",
        HUNT / "cow-index-nothing_left_behind.xfsio",
        HUNT / "cow-index-data_integrity.xfsio",
    ],
    "6.18": [HUNT / "folio-share-association_truth.xfsio", HUNT / "folio-share-no_sigbus.xfsio"],
    "7.3": [HUNT / "folio-share-reset-no_warnings.xfsio", HUNT / "folio-share-no_sigbus.xfsio"],
}
#: Scripts the kernel BUGs in (clear_inode's BUG_ON at the unmount: a PTE entry in a PMD
#: entry's slot), run last in their boot so that the rig's boot after the oops is not needed:
#: the reads on 6.18 (6.2+ replace on any fault to a shared extent), the stores on 6.1 (6.0-6.1
#: on a write fault only). tests/test_pte_in_pmd_slot.py judges them.
CRASHES: dict[str, list[Path]] = {
    "6.1": [SCRIPTS / "pte-in-pmd-slot-write.xfsio"],
    "6.18": [SCRIPTS / "pte-in-pmd-slot.xfsio"],
}
#: Scripts whose checks and agreement with daxsim their own tests judge (test_hunt_confirm.py):
#: the generic tests of tests/test_kernel_scripts.py leave them out (the agreement scripts:
#: tests/test_kernel_agreement.py). phantom-visible's SIGBUS
#: is 6.18's (7.3 maps the PMDs: its expect_errno lines fail there, in daxsim too); the hunt
#: reproducers expect hunt invariants.
OWN_CHECKS = (
    {str(PHANTOM_VISIBLE)}
    | {str(p) for p in (*AGREEMENT_SCRIPTS, *AGREEMENT_POISON)}
    | {str(p) for ps in CRASHES.values() for p in ps}
)
#: The padding file of the confirmation scripts in the suite (past what the suite's scripts use).
HUNT_PAD_BYTES = 64 << 20


def ensure_kernel(name: str):
    """The cached kernel of series ``name``, fetched (with its source files) when missing."""
    from sim.errors import InputError
    from sim.kernel.cache import load_kernel
    from sim.kernel.fetch import fetch_kernel, fetch_source

    try:
        kernel = load_kernel(name)
    except InputError:
        kernel = fetch_kernel(name, log=lambda s: None)
    fetch_source(kernel, log=lambda s: None)
    return kernel


def run_suite(name: str):
    """Boot kernel ``name`` once and run :data:`KERNEL_SUITE` ``[name]`` through the agent.

    The struct pages of the pmem are read before each script's ``@mkfs`` and before its
    unmount (:class:`sim.kernel.pagestate.PageCapture`).

    Returns
    -------
    sim.kernel.run.KernelRun
        With ``by_path``: script path (str) -> its ScriptResult, ``parsed``: script path
        -> its parsed commands, ``paths``: the scripts in the order they ran, and
        ``capture``: the PageCapture (``capture.pages[guest name]`` and
        ``[guest name + "@start"]``), ``hunt``: hunt reproducer -> the confirmation script
        that ran, ``own_checks``: scripts the generic tests leave to their own tests.
    """
    from kernel_helpers import every_line_script

    from sim.hunt.confirm import LOAD_INVARIANTS, confirmation_script, load_check_lines
    from sim.kernel.pagestate import PageCapture
    from sim.kernel.run import prepare_scripts, run_scripts

    kernel = ensure_kernel(name)
    tmp = Path(tempfile.mkdtemp(prefix="daxsim-kernel-suite-"))
    every = tmp / EVERY_LINE
    every.write_text(every_line_script(poison=True))
    hunt = {}
    for p in HUNT_REPRODUCERS.get(name, []):
        design, _, invariant = p.stem.rpartition("-")  # DESIGN-INVARIANT.xfsio
        load = load_check_lines(str(p), design) if invariant in LOAD_INVARIANTS else None
        hunt[str(p)] = str(
            confirmation_script(str(p), tmp, pad_bytes=HUNT_PAD_BYTES, load_check=load)
        )
    paths = [str(p) for p in (*KERNEL_SUITE[name], every, *AFTER_EVERY_LINE[name])]
    paths += list(hunt.values())
    paths += [str(p) for p in CRASHES.get(name, [])]  # last: the guest is killed after it
    capture = PageCapture.for_kernel(kernel)
    run = run_scripts(kernel, paths, pause=capture)
    run.by_path = {s.script: s for s in run.scripts}
    run.parsed = {p: cmds for p, _n, cmds, _prog in prepare_scripts(paths)}
    run.capture = capture
    run.paths = paths
    run.hunt = hunt
    run.own_checks = OWN_CHECKS | set(hunt.values())
    return run
