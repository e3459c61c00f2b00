"""A parsed conformance script as a program for the guest agent (``sim/kernel/agent/daxio.c``).

The agent reads one command per line: ``setup DEV MNT MOUNTOPTS`` first, then
``LINE OP ARG...`` where LINE is the script's line number (0 for the implicit ``@mkfs`` of a
script that does not start with one, as daxsim's runner starts on a fresh filesystem),
numbers are decimal and strings percent-encoded. Options are resolved here (xfs_io's
defaults: pwrite seed 0xcdcdcdcd and buffer of one fs block, mwrite byte ``'X'``, mmap with
every protection when none is given), so the agent does no parsing of xfs_io syntax.

Checks are evaluated on the host (:mod:`sim.kernel.run`); the agent only measures what they
need at that point of the script: md5 of a file or a raw range, byte comparisons, the bytes
of the last read, FIEMAP extents, free blocks. Lines that need nothing from the guest
(``@expect_errno``, ``@expect_sigbus``, ``@expect_free_delta``, ``@expect_poison_owners``,
``@expect_invariant``, ``@scratch_dev_fill``) give no program line.
"""

from __future__ import annotations

import re

from sim.errors import InputError
from sim.xfsio.parse import FS_BLOCK_SIZE, Command

__all__ = [
    "START_PAUSE_SUFFIX",
    "build_program",
    "encode",
    "FALLOC_FL_KEEP_SIZE",
    "FALLOC_FL_PUNCH_HOLE",
    "FALLOC_FL_ZERO_RANGE",
    "FALLOC_FL_UNSHARE_RANGE",
    "FINAL_MD5_MAX_BYTES",
]

#: Suffix of the name of the pause before a script's ``@mkfs`` (see :func:`build_program`).
START_PAUSE_SUFFIX = "@start"

# fallocate(2) mode bits (include/uapi/linux/falloc.h)
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_COLLAPSE_RANGE = 0x08
FALLOC_FL_ZERO_RANGE = 0x10
FALLOC_FL_INSERT_RANGE = 0x20
FALLOC_FL_UNSHARE_RANGE = 0x40
# mmap(2) protections and msync(2) flags (x86-64)
_PROT = {"r": 1, "w": 2, "x": 4}
_MS = {"a": 1, "i": 2, "s": 4}
#: Files larger than this get no md5 in the end-of-script report (a 4 GiB self-reflinked
#: file of generic/175 would take minutes to hash under TCG); their size and extents are kept.
FINAL_MD5_MAX_BYTES = 256 << 20

_SAFE = re.compile(r"[A-Za-z0-9._/+=,:@-]")


def encode(s: str) -> str:
    """Percent-encode ``s`` for one program token (every byte outside a safe set)."""
    out = []
    for ch in s:
        if _SAFE.fullmatch(ch):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode())
    return "".join(out)


def _flags(opts: dict, letters: str) -> str:
    return "".join(c for c in letters if opts.get(c)) or "-"


def _lines_for(cmd: Command, state: dict) -> list[str]:
    """Program lines (without the line number) for one command; ``state`` carries the device
    pre-fill byte and the static file/mapping counts used to refuse impossible selections."""
    n, o, a = cmd.name, cmd.opts, cmd.args
    if n == "open":
        state["files"] += 1
        return [f"open {_flags(o, 'ftrasdnT')} {encode(a[0])}"]
    if n == "close":
        state["files"] = max(0, state["files"] - 1)
        return ["close"]
    if n in ("file", "files"):
        return [f"file {a[0]}"] if a else ["file"]
    if n == "pwrite":
        seed = int(o.get("S", 0xCDCDCDCD)) & 0xFFFFFFFF
        bs = int(o.get("b", FS_BLOCK_SIZE))
        return [f"pwrite {seed} {bs} {_flags(o, 'wWB')} {a[0]} {a[1]}"]
    if n == "pread":
        return [f"pread {int(o.get('b', FS_BLOCK_SIZE))} {a[0]} {a[1]}"]
    if n == "truncate":
        return [f"truncate {a[0]}"]
    if n == "falloc":
        mode = 0
        if o.get("k"):
            mode |= FALLOC_FL_KEEP_SIZE
        if o.get("p"):
            mode |= FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
        if o.get("c"):
            mode |= FALLOC_FL_COLLAPSE_RANGE
        if o.get("i"):
            mode |= FALLOC_FL_INSERT_RANGE
        if o.get("u"):
            mode |= FALLOC_FL_UNSHARE_RANGE
        if o.get("z"):
            mode |= FALLOC_FL_ZERO_RANGE
        return [f"falloc {mode} {a[0]} {a[1]}"]
    if n == "fpunch":
        return [f"falloc {FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE} {a[0]} {a[1]}"]
    if n == "fzero":
        mode = FALLOC_FL_ZERO_RANGE | (FALLOC_FL_KEEP_SIZE if o.get("k") else 0)
        return [f"falloc {mode} {a[0]} {a[1]}"]
    if n == "funshare":
        return [f"falloc {FALLOC_FL_UNSHARE_RANGE} {a[0]} {a[1]}"]
    if n == "reflink":
        if len(a) == 1:
            return [f"reflink {encode(a[0])} 0 0 0"]
        return [f"reflink {encode(a[0])} {a[1]} {a[2]} {a[3]}"]
    if n == "dedupe":
        return [f"dedupe {encode(a[0])} {a[1]} {a[2]} {a[3]}"]
    if n == "mmap":
        if not a:
            return []  # lists the mappings: nothing to do in the guest
        if len(a) == 1 and not o:
            if a[0] >= state["maps"]:
                raise InputError(f"mmap {a[0]}: no such mapping", where=state["where"])
            return [f"mapsel {a[0]}"]
        if state["files"] == 0:
            raise InputError("mmap: no file open", where=state["where"])
        prot = sum(v for k, v in _PROT.items() if o.get(k)) or 7
        state["maps"] += 1
        return [f"mmap {prot} {1 if o.get('S') else 0} {int(o.get('s', 0))} {a[0]} {a[1]}"]
    if n in ("mread", "mwrite", "msync", "munmap") and state["maps"] == 0:
        raise InputError(f"{n}: no current mapping", where=state["where"])
    rng = (f"{a[0]} {a[1]}" if a else "*") if n in ("mread", "mwrite", "msync") else ""
    if n == "mread":
        return [f"mread {_flags(o, 'rv')} {rng}"]
    if n == "mwrite":
        return [f"mwrite {_flags(o, 'r')} {int(o.get('S', 0x58))} {rng}"]
    if n == "msync":
        return [f"msync {sum(v for k, v in _MS.items() if o.get(k))} {rng}"]
    if n == "munmap":
        state["maps"] -= 1
        return ["munmap"]
    if n in ("fsync", "fdatasync", "stat", "md5sum"):
        return [n]
    if n == "@mkfs":
        state["files"] = state["maps"] = 0
        fill = state["fill"] if state["fill"] is not None else -1
        return [f"mkfs {int(o.get('size', 0))} {fill}"]
    if n == "@scratch_dev_fill":
        state["fill"] = int(a[0]) & 0xFF
        return []
    if n == "@cycle_mount":
        state["files"] = state["maps"] = 0
        return ["cycle"]
    if n == "@sync":
        return ["sync"]
    if n == "@unlink":
        return [f"unlink {encode(a[0])}"]
    if n == "@hwpoison":
        if state["maps"] == 0:
            raise InputError("@hwpoison: no current mapping", where=state["where"])
        return [f"hwpoison {a[0]} {a[1]}"]
    if n == "@statfs":
        return ["statfs"]
    if n in ("@expect_md5", "@final"):
        return [f"md5 {encode(a[0])}"]
    if n == "@expect_range_md5":
        return [f"md5 {encode(a[0])} {a[1]} {a[2]}"]
    if n == "@expect_cmp":
        return [f"cmp {encode(a[0])} {encode(a[1])}"]
    if n == "@expect_range":
        return [f"range {encode(a[0])} {a[1]} {encode(a[2])} {a[3]} {a[4]}"]
    if n == "@expect_bytes":
        return [f"bytes {a[0]} {len(a[1]) // 2}"]
    if n == "@expect_same_mapping":
        return [f"fiemap {encode(a[0])}", f"fiemap {encode(a[1])}"]
    if n == "@model_shared_blocks":
        return [f"fiemap {encode(a[0])}"]
    if n in (
        "@expect_errno",
        "@expect_sigbus",
        "@expect_free_delta",
        "@expect_poison_owners",
        "@expect_invariant",
    ):
        return []
    raise InputError(f"{n}: not supported on a kernel", where=state["where"])


def build_program(
    commands: list[Command],
    *,
    filename: str,
    dev: str = "/dev/pmem0",
    mnt: str = "/mnt/scratch",
    mount_opts: str = "dax=always",
    pause_name: str | None = None,
    final_md5_max_bytes: int = FINAL_MD5_MAX_BYTES,
) -> bytes:
    """The agent program of a parsed script.

    Parameters
    ----------
    commands : list of Command
        From :func:`sim.xfsio.parse.parse_script`.
    filename : str
        Script name for error messages.
    dev, mnt, mount_opts : str
        Device to mkfs and mount, mount point, mount options (``"-"`` for none). ``dev="-"``
        makes ``mnt`` a plain directory that ``@mkfs`` empties (for tests on a host).
    pause_name : str, optional
        When given, the agent stops before the unmount and prints ``DAXSIM-PAUSE NAME`` on
        /dev/ttyS1 (the page-state hook), and likewise before its ``@mkfs`` with
        ``NAME`` + :data:`START_PAUSE_SUFFIX` (the page state the script starts from).
    final_md5_max_bytes : int
        Files larger than this get no md5 in the end-of-script report.

    Returns
    -------
    bytes
        The program text.

    Raises
    ------
    InputError
        A line the kernel rig cannot run, or a mapping or file selected that cannot exist
        (``FILE:LINE``).
    """
    out = [f"setup {encode(dev)} {encode(mnt)} {encode(mount_opts) if mount_opts else '-'}"]
    if pause_name is not None:
        # the page state the script starts from: struct pages outlive a filesystem
        out.append(f"0 pause {encode(pause_name + START_PAUSE_SUFFIX)}")
    state = {"files": 0, "maps": 0, "fill": None, "where": filename}
    first = next((c for c in commands if c.name != "@scratch_dev_fill"), None)
    if first is None or first.name != "@mkfs":
        out.append("0 mkfs 0 -1")
    for cmd in commands:
        state["where"] = f"{filename}:{cmd.line}"
        for ln in _lines_for(cmd, state):
            out.append(f"{cmd.line} {ln}")
    end = max((c.line for c in commands), default=0) + 1
    out.append(f"{end} final {int(final_md5_max_bytes)}")
    if pause_name is not None:
        out.append(f"{end} pause {encode(pause_name)}")
    out.append(f"{end} umount")
    return ("\n".join(out) + "\n").encode()
