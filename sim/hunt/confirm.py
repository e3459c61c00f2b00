"""Hunt findings replayed on a real kernel of their design (``daxsim hunt --confirm``).

Every finding of a built-in design whose reproducer was written is run, as an xfs_io script,
on a cached kernel that runs that design (:func:`sim.kernel.cache.cached_kernels`, the
design derived from the kernel itself), all findings of one kernel in one boot
(:func:`sim.kernel.run.run_scripts`), with the struct pages of the pmem read before the
unmount that ends each script (:class:`sim.kernel.pagestate.PageCapture`). What counts as
confirmation depends on the invariant:

``no_warnings``
    the kernel prints a WARN whose daxsim site (:func:`sim.kernel.splat.parse_splats`, read
    from the condition on the WARN's source line) is one of the sites daxsim fired on the
    same script. A WARN elsewhere is reported, but does not confirm. A kernel BUG counts the
    same way (clear_inode's, site ``clear_inode_nrpages``): the script stops there, the rig
    kills the guest, and the BUG's splat is the evidence.
``no_sigbus``
    the kernel delivers SIGBUS to the same access: the reproducer's ``@expect_errno SIGBUS``
    line after it (the hunt writes one after every failing command) passes on the kernel.
    The WARNs printed with it are reported as evidence.
``association_truth``, ``nothing_left_behind``
    the page state read from the kernel shows the anomaly daxsim's state of the same script
    shows at that point: the seed's residue (flag and a zero count, ``residue_pages``) or the
    folio designs' phantom (a stale share, ``phantom_pages``), counted against the pages of
    the script's start (struct pages outlive the filesystem). When daxsim's end state holds
    neither (the violation was an owner or a count gone wrong on a live file), the kernel's
    pages must read, file by file and offset by offset, what daxsim's read. When the pages
    show the state only where an earlier script of the boot had already left the same state
    (a state re-made over itself cannot be told from one left alone), the verdict is
    ``inconclusive``.

``data_integrity`` (a mapping that no longer maps its file's blocks, the 6.0 stale PTE)
    a load through that mapping of the page daxsim finds stale, added at the script's end
    (``mread -v`` then ``@expect_bytes`` of what read(2) reads there), reads other bytes on
    the kernel too: the kernel's ``@expect_bytes`` fails as daxsim's does. A violation of the
    file contents themselves (no stale mapping) is not replayed.

Why the page state and not a WARN for these two: they are silent states (no WARN is on their
path), so the only thing the kernel can show is the struct pages themselves.

A ``@statfs`` line is added before the script's ``@expect_invariant`` line: ``xfs_fs_statfs``
flushes the deferred inode inactivation (``xfs_inodegc_flush``, since 5.15), so that the
files the reproducer unlinked have really been evicted (their DAX entries deleted, their
pages disassociated) when the pages are read, as they are in daxsim at that line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sim.constants import BUILTIN_DESIGNS
from sim.memmap.layout import BUG_SITES

__all__ = [
    "Confirmation",
    "daxsim_at_end",
    "LOAD_INVARIANTS",
    "PAGE_INVARIANTS",
    "SIGBUS_INVARIANTS",
    "WARN_INVARIANTS",
    "load_check_lines",
    "confirm_rows",
    "confirmation_script",
    "judge",
    "judge_script",
    "kernel_for_design",
]

#: Invariants the kernel confirms with a WARN.
WARN_INVARIANTS = ("no_warnings",)
#: Invariants the kernel confirms with the page state read from its struct pages.
PAGE_INVARIANTS = ("association_truth", "nothing_left_behind")
#: Invariants the kernel confirms with a load through a mapping (:func:`load_check_lines`).
LOAD_INVARIANTS = ("data_integrity",)
#: Invariants the kernel confirms with the SIGBUS it delivers to the process.
SIGBUS_INVARIANTS = ("no_sigbus",)

#: Size of the file that places the n-th script of a boot past the earlier ones' blocks (n
#: times this; a reproducer's filesystem is 32 MiB).
PAD_STEP_BYTES = 32 << 20

NOT_REPRODUCED = "not reproduced"
NO_KERNEL = "no kernel cached"
CONFIRMED = "confirmed"
INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Confirmation:
    """What a kernel showed for one finding.

    Attributes
    ----------
    status : str
        ``"confirmed"``, ``"not reproduced"``, ``"inconclusive"`` (the pages show the state,
        but an earlier script of the same boot had left the same state on them), ``"no
        kernel cached"``, or ``""`` (not a
        finding that is replayed: none found, a known limit, an invariant the kernel cannot
        show, a user design).
    kernel : str
        The kernel release it ran on (``""`` when it did not run).
    evidence : str
        The WARN line (``fs/dax.c:495 dax_associate_entry``) or the page state
        (``residue_pages 1``) that confirms, or what the kernel showed instead.
    """

    status: str = ""
    kernel: str = ""
    evidence: str = ""

    def cell(self) -> str:
        """One table cell's text."""
        if not self.status:
            return ""
        where = f" on {self.kernel}" if self.kernel else ""
        return f"{self.status}{where}" + (f" ({self.evidence})" if self.evidence else "")


def kernel_for_design(design: str, kernels):
    """The newest cached kernel running ``design``, or None."""
    found = [k for k in kernels if k.design == design]
    return found[-1] if found else None


def load_check_lines(reproducer: str, design: str) -> list[str] | None:
    """The lines that show a ``data_integrity`` finding's stale mapping on a kernel: select
    the mapping daxsim finds stale after the reproducer's commands
    (:func:`sim.hunt.invariants.stale_mapping`), load through it (``mread -v``) the first
    4 bytes of that page where daxsim's stale page and the file differ, and expect what
    read(2) reads there (``@expect_bytes``). None when no mapping is stale (a violation of
    the file contents: not shown by a load)."""
    from sim.hunt.invariants import runner_invariants, stale_mapping
    from sim.xfsio.parse import parse_script
    from sim.xfsio.runner import XfsioRunner

    cmds = parse_script(Path(reproducer).read_text(), str(reproducer))
    at = next((i for i, c in enumerate(cmds) if c.name == "@expect_invariant"), len(cmds))
    r = XfsioRunner(design, filename=str(reproducer), invariants=runner_invariants())
    r.run(cmds[:at])
    hit = stale_mapping(r.dax)
    if hit is None or hit[0] not in r.maps:
        return None
    vid, idx, _pfn, _cur = hit
    base = idx * 4096
    page = r.dax.fs.pread(r.dax.vmas[vid].ino, base, 4096)
    seen = r.dax.load(vid, base, len(page))
    # The first bytes where the stale page and the file differ: the two may agree on a
    # prefix (the same fill written over part of the page), where a load shows nothing.
    first = next((i for i, (a, b) in enumerate(zip(page, seen, strict=True)) if a != b), None)
    if first is None:
        return None
    off = base + first
    want = page[first : first + 4]
    return [
        f"mmap {r.maps.index(vid)}",
        f"mread -v {off} {len(want)}",
        f"@expect_bytes {off} {want.hex()}",
    ]


def confirmation_script(
    reproducer: str, out_dir: Path, *, pad_bytes: int = 0, load_check=None
) -> Path:
    """The reproducer as the kernel replays it, written into ``out_dir`` under its name.

    Three changes, none of which changes what daxsim computes for the script:

    - before its ``@expect_invariant`` line, one ``close`` per file still open (the agent keeps a
      file open until ``close``, and an open file, unlinked or not, keeps its inode and its
      DAX entries), then ``@statfs confirm``: ``xfs_fs_statfs`` flushes XFS's deferred inode
      inactivation (``xfs_inodegc_flush``, since 5.15), so that the files the reproducer
      unlinked are evicted (their entries deleted, their pages disassociated) when the pages
      are read, as they are in daxsim at that line;
    - with ``pad_bytes``, a file of that size is written (in 64 KiB writes, which fill the
      free space from its start) right after ``@mkfs``, the device made as much larger, and
      the file removed before the statfs: struct pages outlive a filesystem, so the scripts
      of one boot place their files past the blocks earlier scripts used (a state re-made
      over the same state reads as untouched against the script's start);
    - ``load_check`` (:func:`load_check_lines`) goes right before the ``close`` lines.
    """
    lines = Path(reproducer).read_text().splitlines()
    at = next(
        (i for i, ln in enumerate(lines) if ln.strip().startswith("@expect_invariant")),
        len(lines),
    )
    words = [ln.split()[:1] for ln in lines[:at]]
    opens = words.count(["open"]) - words.count(["close"])  # the files still open there
    pad_gone = ["@unlink .confirm-pad"] if pad_bytes > 0 else []
    lines[at:at] = list(load_check or ()) + ["close"] * opens + pad_gone + ["@statfs confirm"]
    if pad_bytes > 0:
        mk = next((i for i, ln in enumerate(lines) if ln.startswith("@mkfs")), None)
        if mk is not None:
            m = re.search(r"size=(\d+)", lines[mk])
            if m is not None:
                size = int(m.group(1)) + pad_bytes
                lines[mk] = lines[mk][: m.start()] + f"size={size}" + lines[mk][m.end() :]
            lines[mk + 1 : mk + 1] = [
                "open -f .confirm-pad",
                f"pwrite -S 0x5a 0 {pad_bytes}",
                "close",
            ]
    path = Path(out_dir) / Path(reproducer).name
    path.write_text("\n".join(lines) + "\n")
    return path


def daxsim_at_end(commands, filename: str, design: str):
    """daxsim's state after a reproducer's commands, before the unmount (what the kernel's
    pause reads there), with the hunt's invariants known to ``@expect_invariant``.

    Returns
    -------
    sim.dax.DaxFS
    """
    from sim.kernel.pagestate import daxsim_before_unmount

    return daxsim_before_unmount(commands, filename, design)


def _warn_text(w: dict) -> str:
    kind = "BUG" if w.get("site") in BUG_SITES else "WARN"
    return f"{kind} {w['file']}:{w['line']} {w['function']}"


def judge(invariant: str, script_result, pages, baseline, iomem: str, design: str, dax):
    """Whether a kernel's run of a reproducer confirms its finding.

    Parameters
    ----------
    invariant : str
        The finding's invariant.
    script_result : sim.kernel.run.ScriptResult
        The kernel's run of the script.
    pages, baseline : sim.kernel.pagestate.KernelPages or None
        Struct pages read before the unmount, and at the script's start.
    iomem : str
        The guest's iomem report (the pfn device's data area).
    design : str
        The design the kernel runs.
    dax : sim.dax.DaxFS
        daxsim's state of the same script at its end (before the unmount).

    Returns
    -------
    tuple of (str, str)
        ``(status, evidence)``.
    """
    from sim.kernel.pagestate import (
        compare_views,
        data_area,
        daxsim_view,
        final_files,
        kernel_view,
    )

    r = script_result
    # a kernel BUG stops the script (the rig kills the guest after it): for no_warnings the
    # BUG's splat is the evidence, as a WARN's is
    bugged = getattr(r, "crash", None) is not None and invariant in WARN_INVARIANTS
    if r.error is not None and not bugged:
        return NOT_REPRODUCED, f"the script did not run to its end: {r.error}"
    if invariant in LOAD_INVARIANTS:
        loads = [c for c in r.checks if c.kind == "expect_bytes"]
        if not loads:
            return NOT_REPRODUCED, "no load through the stale mapping was checked"
        c = loads[-1]
        text = f"line {c.line}: a load reads {c.found}, read(2) {c.expected}"
        if not c.ok:
            return CONFIRMED, text
        return NOT_REPRODUCED, f"line {c.line}: the load reads what read(2) reads ({c.found})"
    if invariant in WARN_INVARIANTS:
        fired = {s for s, c in dax.mm.warnings.items() if c}
        for w in r.warnings:
            if w.get("site") in fired:
                return CONFIRMED, _warn_text(w)
        if r.warnings:
            return NOT_REPRODUCED, "only " + "; ".join(_warn_text(w) for w in r.warnings)
        return NOT_REPRODUCED, "no WARN"
    if invariant in SIGBUS_INVARIANTS:
        hits = [c for c in r.checks if c.kind == "expect_errno" and c.expected == "SIGBUS" and c.ok]
        warns = "".join(f"; {_warn_text(w)}" for w in r.warnings)
        if hits:
            return CONFIRMED, f"SIGBUS at line {hits[0].line}{warns}"
        return NOT_REPRODUCED, ("no SIGBUS" if not r.sigbus else "SIGBUS elsewhere") + warns
    if pages is None:
        return NOT_REPRODUCED, "the kernel's page state could not be read"
    start, size = data_area(iomem)
    kv = kernel_view(pages, design, final_files(r.reports), start, size, baseline)
    dv = daxsim_view(dax)
    for what in ("residue_pages", "phantom_pages"):
        want = getattr(dv, what)
        if want > 0:
            got = getattr(kv, what)
            text = f"{what} {got} (daxsim {want})"
            if got > 0:
                return CONFIRMED, text
            if baseline is not None:
                whole = getattr(
                    kernel_view(pages, design, final_files(r.reports), start, size), what
                )
                if whole > 0:
                    return INCONCLUSIVE, (
                        f"{what} {whole} at the end, all as an earlier script of the boot left them"
                    )
            return NOT_REPRODUCED, text
    rows = compare_views(kv, dv)
    bad = [row for row in rows if not row[3]]
    if not bad and len(rows) == 3:
        # Nothing is associated at the end on either side: the violation was a state the
        # script passed through, which the pages read at its end cannot show.
        return INCONCLUSIVE, "no associated page at the script's end on either side"
    if not bad:
        return CONFIRMED, f"page state as daxsim's ({len(rows) - 3} runs of pages)"
    o, k, d, _ = bad[0]
    return NOT_REPRODUCED, f"{o}: kernel {k}, daxsim {d}"


def confirm_rows(rows, *, kernels=None, work_dir, say=None, run=None) -> list[Confirmation]:
    """Replay every replayable finding of ``rows`` on a kernel of its design.

    Parameters
    ----------
    rows : list of sim.hunt.report.HuntRow
        The hunt's rows; a row is replayed when it is a violation (not a limit) of a
        built-in design with an invariant of :data:`WARN_INVARIANTS`,
        :data:`SIGBUS_INVARIANTS`, :data:`PAGE_INVARIANTS` or :data:`LOAD_INVARIANTS` (a stale
        mapping) and a reproducer file.
    kernels : list of KernelInfo, optional
        The kernels to choose from (default: every cached kernel).
    work_dir : str or Path
        Where the confirmation scripts are written (see :func:`confirmation_script`).
    say : callable, optional
        Progress lines.
    run : callable, optional
        ``run(kernel, paths, pause)`` -> :class:`sim.kernel.run.KernelRun` (default
        :func:`sim.kernel.run.run_scripts`): one boot per kernel.

    Returns
    -------
    list of Confirmation
        One per row, in order.
    """
    from sim.kernel.cache import cached_kernels
    from sim.kernel.pagestate import PageCapture
    from sim.kernel.run import guest_name

    if run is None:
        from sim.kernel.run import run_scripts

        def run(kernel, paths, pause):
            return run_scripts(kernel, paths, pause=pause)

    kernels = cached_kernels() if kernels is None else list(kernels)
    out = [Confirmation() for _ in rows]
    by_kernel: dict[str, tuple] = {}
    for i, r in enumerate(rows):
        if (
            r.status != "violated"
            or r.variant not in BUILTIN_DESIGNS
            or r.invariant
            not in WARN_INVARIANTS + SIGBUS_INVARIANTS + PAGE_INVARIANTS + LOAD_INVARIANTS
            or not r.reproducer
        ):
            continue
        if r.invariant in LOAD_INVARIANTS and load_check_lines(r.reproducer, r.variant) is None:
            continue  # the file contents, not a mapping: no load shows it
        k = kernel_for_design(r.variant, kernels)
        if k is None:
            out[i] = Confirmation(NO_KERNEL)
            continue
        by_kernel.setdefault(k.release, (k, []))[1].append(i)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    for release, (k, idx) in by_kernel.items():
        # WARN findings first: what a page-state finding leaves in the struct pages (the
        # seed's residue) outlives its filesystem and could make a later script warn.
        idx = sorted(idx, key=lambda i: rows[i].invariant not in WARN_INVARIANTS)
        d = work / release
        d.mkdir(parents=True, exist_ok=True)
        paths = []
        for n, i in enumerate(idx):
            sub = d / f"{n:03d}"
            sub.mkdir(exist_ok=True)
            pad = n * PAD_STEP_BYTES
            load = None
            if rows[i].invariant in LOAD_INVARIANTS:
                load = load_check_lines(rows[i].reproducer, rows[i].variant)
            paths.append(
                str(confirmation_script(rows[i].reproducer, sub, pad_bytes=pad, load_check=load))
            )
        if say is not None:
            say(f"confirming {len(paths)} finding(s) on {release} ({k.design}): one boot")
        capture = PageCapture.for_kernel(k)
        kr = run(k, paths, capture)
        for n, (i, path) in enumerate(zip(idx, paths, strict=True)):
            try:
                status, evidence = judge_script(
                    rows[i].invariant, path, kr, kr.scripts[n], capture, guest_name(n, path)
                )
            except ValueError as exc:  # pages that are not the pmem's, no final report
                status, evidence = INCONCLUSIVE, f"page state not readable: {exc}"
            out[i] = Confirmation(status, release, evidence)
    return out


def judge_script(invariant: str, path: str, kernel_run, script_result, capture, name: str):
    """:func:`judge` for one script of a boot: daxsim's state of the same script, the pages
    the capture read for it (under the guest name ``name``, and ``name@start``).

    Returns
    -------
    tuple of (str, str)
        ``(status, evidence)``.
    """
    from sim.kernel.program import START_PAUSE_SUFFIX
    from sim.xfsio.parse import parse_script

    k = kernel_run.kernel
    dax = daxsim_at_end(parse_script(Path(path).read_text(), path), path, k.design)
    return judge(
        invariant,
        script_result,
        capture.pages.get(name),
        capture.pages.get(name + START_PAUSE_SUFFIX),
        kernel_run.iomem,
        k.design,
        dax,
    )
