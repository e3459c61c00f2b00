"""WARN/BUG splats of a kernel log, and DAX fault counts from the fs_dax tracepoints.

A splat names ``FILE:LINE`` and the symbol the instruction is in, which for an inlined
function is its caller (``dax_associate_entry`` is inlined into ``dax_insert_entry``). When the
kernel's source is in the cache (``kernels/<release>/source/``, extracted by ``fetch`` from
Debian's ``linux-source-X.Y`` of the same version), the function reported is the one whose body
holds that line, and the daxsim warning site is read from the condition on that line; without
the source, the printed symbol is reported and the site comes from the lines observed on the
kernels of ``../shared/docs/real-kernels.md``.

Fault counts (fs/dax.c, ``dax_iomap_pte_fault`` and ``dax_iomap_pmd_fault``, Linux 6.1-7.3):
every PTE or PMD fault of a DAX file ends with ``trace_dax_pte_fault_done`` /
``trace_dax_pmd_fault_done`` carrying the fault's result, printed last on the trace line.

- ``pte``: ``dax_pte_fault_done`` with ``NOPAGE`` in the result: the fault installed a PTE
  (through ``dax_insert_entry``, the associate call) or found one installed by a racing fault.
  Faults that end in ``SIGBUS`` (beyond EOF, media error), ``HWPOISON``, ``OOM`` or
  ``DONE_COW`` (a private mapping's copy, no DAX entry) are not counted.
- ``pmd``: ``dax_pmd_fault_done`` with ``NOPAGE``: a PMD was installed (``vmf_insert_pfn_pmd``
  or the huge zero page of a hole).
- ``pmd_fallback``: ``dax_pmd_fault_done`` with ``FALLBACK``: the PMD fault gave up
  (misaligned extent, too little of the file, a PTE already there) and the access is retried
  as PTE faults, which are counted in ``pte``.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "parse_splats",
    "fault_counts",
    "lost_events",
    "enclosing_function",
    "site_of_line",
    "KNOWN_SITES",
]

#: ``WARNING: CPU: 0 PID: 136 at fs/dax.c:380 dax_insert_entry+0x227/0x320`` (Linux 6.x) and
#: ``WARNING: fs/dax.c:495 at dax_insert_entry+0x31b/0x3d0, CPU#0: xfs_io/140`` (Linux 7.x).
_WARN = re.compile(
    r"WARNING: (?:CPU: \d+ PID: \d+ at |at )?(?P<file>[\w./+-]+):(?P<line>\d+)"
    r"(?: at)? (?P<sym>[\w.$]+)(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?"
)
_BUG = re.compile(r"kernel BUG at (?P<file>[\w./+-]+):(?P<line>\d+)!")
_RIP = re.compile(r"RIP: [0-9a-f]{4}:(?P<sym>[\w.$]+)\+0x")

#: Lines observed on Debian's kernels (real-kernels.md), used when the source is not cached:
#: (version, file, line) -> daxsim site.
KNOWN_SITES: dict[tuple[str, str, int], str] = {
    ("6.1.192", "fs/dax.c", 380): "associate_mapping_set",
    ("6.1.192", "fs/dax.c", 404): "disassociate_foreign_mapping",
    # dax_associate_entry's order WARN and vmf_insert_folio_pmd's (phantom-visible,
    # pmd-then-pte-shared); Debian ships no linux-source of 6.18 to read them from
    ("6.18.15", "fs/dax.c", 457): "associate_order_mismatch",
    ("6.18.15", "mm/huge_memory.c", 1521): "pmd_folio_order",
    ("7.3.4", "fs/dax.c", 495): "associate_order_mismatch",
    # dax_folio_put's WARN_ON_ONCE(folio_ref_count(new_folio)) (6.18's source is not in the
    # cache: the line observed with stale-pmd-cow-write.xfsio)
    ("6.18.15", "fs/dax.c", 415): "folio_put_refcount",
    ("7.3.4", "mm/huge_memory.c", 1744): "pmd_folio_order",
    # clear_inode's BUG_ON(inode->i_data.nrpages) (fs/inode.c is not in the cache): the lines
    # observed with kernel/pte-in-pmd-slot.xfsio (6.1: its stores, pte-in-pmd-slot-write),
    # the RIP in clear_inode
    ("6.1.192", "fs/inode.c", 657): "clear_inode_nrpages",
    ("6.12.118", "fs/inode.c", 673): "clear_inode_nrpages",
    ("6.18.15", "fs/inode.c", 753): "clear_inode_nrpages",
    ("7.3.4", "fs/inode.c", 776): "clear_inode_nrpages",
}

#: The condition on a WARN line -> daxsim site (sim/memmap/layout.py SITES).
_SITE_RULES: tuple[tuple[re.Pattern, str], ...] = (
    # dax_associate_entry: WARN_ON_ONCE(page->mapping) (v4.17+) / folio->mapping (v6.15+)
    (re.compile(r"WARN_ON_ONCE\(\s*(?:page|folio)->mapping\s*\)"), "associate_mapping_set"),
    # dax_disassociate_entry: WARN_ON_ONCE(page->mapping && page->mapping != mapping)
    (
        re.compile(r"WARN_ON_ONCE\(\s*(?:page|folio)->mapping\s*&&\s*(?:page|folio)->mapping\s*!="),
        "disassociate_foreign_mapping",
    ),
    # dax_associate_entry (v6.15+): WARN_ON_ONCE(dax_entry_order(entry) != folio_order(folio))
    (
        re.compile(r"dax_entry_order\(entry\)\s*!=\s*folio_order\(folio\)"),
        "associate_order_mismatch",
    ),
    # dax_associate_entry (v6.15+): WARN_ON_ONCE(!folio->share)
    (re.compile(r"WARN_ON_ONCE\(\s*!\s*folio->share\s*\)"), "associate_share_zero"),
    # vmf_insert_folio_pmd (mm/huge_memory.c, v6.15+):
    # if (WARN_ON_ONCE(folio_order(folio) != PMD_ORDER)) return VM_FAULT_SIGBUS;
    (re.compile(r"WARN_ON_ONCE\(\s*folio_order\(folio\)\s*!=\s*PMD_ORDER\s*\)"), "pmd_folio_order"),
    # dax_folio_init (v6.15+): WARN_ON_ONCE(folio_order(folio))
    (re.compile(r"WARN_ON_ONCE\(\s*folio_order\(folio\)\s*\)"), "folio_init_order"),
    # dax_folio_put's check of each page of the folio it resets: v6.15-v7.0
    # WARN_ON_ONCE(folio_ref_count(new_folio)), v7.1+ WARN_ON_ONCE(folio_ref_count((struct
    # folio *)page)) (not dax_folio_init's folio_ref_count(folio))
    (
        re.compile(
            r"WARN_ON_ONCE\(\s*folio_ref_count\(\s*(?:new_folio|\(struct folio \*\)\s*page)\s*\)"
        ),
        "folio_put_refcount",
    ),
    # clear_inode (fs/inode.c): BUG_ON(inode->i_data.nrpages)
    (re.compile(r"BUG_ON\(\s*inode->i_data\.nrpages\s*\)"), "clear_inode_nrpages"),
)

_IDENT_BEFORE_PAREN = re.compile(r"([A-Za-z_]\w*)\s*\($")


def enclosing_function(source: str, line: int) -> str | None:
    """The name of the C function whose body holds ``line`` (1-based) of ``source``.

    Kernel style is assumed: a function's signature starts in column 0, its body opens with
    ``{`` in column 0 and closes with ``}`` in column 0.
    """
    lines = source.splitlines()
    if not 1 <= line <= len(lines):
        return None
    for i in range(line - 1, -1, -1):
        text = lines[i]
        if text.startswith("}") and i != line - 1:
            return None  # the line is between functions
        if not text.startswith("{"):
            continue
        for j in range(i - 1, max(i - 12, -1), -1):
            sig = lines[j]
            if sig[:1].isspace() or sig.startswith(("#", "/", "*")) or "(" not in sig:
                continue
            m = _IDENT_BEFORE_PAREN.search(sig.split("(", 1)[0] + "(")
            if m:
                return m.group(1)
        return None
    return None


def site_of_line(text: str) -> str | None:
    """The daxsim warning site of a WARN condition's source line, or None."""
    for pat, site in _SITE_RULES:
        if pat.search(text):
            return site
    return None


def _source_file(kernel, file: str) -> Path | None:
    if kernel is None:
        return None
    root = kernel.work_dir / "source"
    path = (root / file).resolve()
    if root.resolve() in path.parents and path.is_file():
        return path
    return None


def parse_splats(dmesg: str, kernel=None) -> list[dict]:
    """Every WARNING and kernel BUG splat of a kernel log.

    Parameters
    ----------
    dmesg : str
        The kernel log.
    kernel : KernelInfo, optional
        The kernel that wrote it (for its cached source and known lines).

    Returns
    -------
    list of dict
        ``{"file", "line", "function", "site"}`` per splat, in log order: the ``file:line``
        the kernel printed, the function holding that line (the printed symbol when the source
        is not cached), the daxsim warning site or None.
    """
    out = []
    lines = dmesg.splitlines()
    for k, text in enumerate(lines):
        m = _WARN.search(text)
        sym = None
        if m is None:
            m = _BUG.search(text)
            if m is None:
                continue
            for follow in lines[k + 1 : k + 40]:
                r = _RIP.search(follow)
                if r:
                    sym = r.group("sym")
                    break
        else:
            sym = m.group("sym")
        file, line = m.group("file"), int(m.group("line"))
        function, site = sym, None
        src = _source_file(kernel, file)
        if src is not None:
            source = src.read_text(errors="replace")
            function = enclosing_function(source, line) or sym
            src_lines = source.splitlines()
            if line <= len(src_lines):
                site = site_of_line(src_lines[line - 1])
        elif kernel is not None:
            site = KNOWN_SITES.get((kernel.version, file, line))
        out.append({"file": file, "line": line, "function": function, "site": site})
    return out


_DONE = re.compile(r"\b(dax_pte_fault_done|dax_pmd_fault_done):.*\s(\S+)\s*$")


def fault_counts(trace: str) -> dict[str, int]:
    """``{"pte", "pmd", "pmd_fallback"}`` counted from fs_dax ``*_fault_done`` events (see the
    module docstring for which results count)."""
    counts = {"pte": 0, "pmd": 0, "pmd_fallback": 0}
    for text in trace.splitlines():
        m = _DONE.search(text)
        if m is None:
            continue
        result = set(m.group(2).split("|"))
        if m.group(1) == "dax_pte_fault_done":
            if "NOPAGE" in result:
                counts["pte"] += 1
        elif "NOPAGE" in result:
            counts["pmd"] += 1
        elif "FALLBACK" in result:
            counts["pmd_fallback"] += 1
    return counts


_ENTRIES = re.compile(r"entries-in-buffer/entries-written: (\d+)/(\d+)")


def lost_events(trace: str) -> int:
    """Events the trace buffer overwrote before it was read (its header's
    ``entries-written`` minus ``entries-in-buffer``): fault counts are short by up to that
    many when it is not 0."""
    m = _ENTRIES.search(trace)
    return int(m.group(2)) - int(m.group(1)) if m else 0
