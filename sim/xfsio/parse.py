"""Parser of xfs_io scripts (``*.xfsio``) and ``-c`` commands: text to :class:`Command`.

Parsing only; :mod:`sim.xfsio.runner` executes. Options follow xfs_io's getopt use (option
clusters such as ``-rw``, values attached or separate: ``-S0x61`` / ``-S 0x61``; options may
come after the positional arguments, as glibc getopt permutes); sizes and offsets follow
xfs_io's ``cvtnum`` (libfrog/convert.c): strtoll base 0 (``0x`` hex, leading-0 octal) and one
optional suffix ``k m g t p e`` (powers of 1024, any case), ``b`` (fs block, 4096) or ``s``
(512-byte sector).
"""

from __future__ import annotations

import errno
import re
import shlex
from dataclasses import dataclass

from sim.constants import BLOCK_SIZE
from sim.errors import InputError, quote

__all__ = [
    "Command",
    "parse_script",
    "parse_command",
    "cvtnum",
    "COMMANDS",
    "FS_BLOCK_SIZE",
    "SECTOR_SIZE",
]

#: xfs_io's ``b`` suffix: the filesystem block size.
FS_BLOCK_SIZE = BLOCK_SIZE
SECTOR_SIZE = 512

_NUM = re.compile(r"^([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)(.?)$")
_SUFFIX = {
    "k": 1 << 10,
    "m": 1 << 20,
    "g": 1 << 30,
    "t": 1 << 40,
    "p": 1 << 50,
    "e": 1 << 60,
    "b": FS_BLOCK_SIZE,
    "s": SECTOR_SIZE,
}


@dataclass(frozen=True)
class Command:
    """One parsed script line.

    Attributes
    ----------
    line : int
        1-based line number in the file (for ``-c`` commands, the position of the ``-c``).
    name : str
        Command name: ``"open"``, ``"pwrite"``, ``"mmap"``, ``"@expect_md5"``, ...
    opts : dict
        Option letter (or ``key`` of ``key=value`` fields) to value: True for flags, int for
        numeric options (``-S`` seed, ``-b`` bs, ``size=``), str otherwise.
    args : tuple
        Positional arguments; sizes and offsets as int, paths and words as str.
    text : str
        The raw line.
    """

    line: int
    name: str
    opts: dict
    args: tuple
    text: str


def cvtnum(s: str) -> int:
    """xfs_io size/offset conversion.

    Parameters
    ----------
    s : str
        ``"4096"``, ``"0x1000"``, ``"64k"``, ``"1M"``, ``"2b"`` (fs blocks), ``"8s"`` (sectors).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        When the text is not a number with at most one known suffix.
    """
    m = _NUM.match(s.strip()) if isinstance(s, str) else None
    if not m:
        raise ValueError(f"not a number: {quote(s)}")
    sign, digits, suf = m.groups()
    v = (
        int(digits, 0)
        if not (len(digits) > 1 and digits[0] == "0" and digits[1] not in "xX")
        else int(digits, 8)
    )
    if sign == "-":
        v = -v
    if suf:
        mult = _SUFFIX.get(suf.lower())
        if mult is None:
            raise ValueError(f"bad size suffix {quote(suf)} in {quote(s)}")
        v *= mult
    return v


def _strtoul(s: str) -> int:
    """C strtoul(s, NULL, 0) on the whole string (the -S seed)."""
    t = s.strip()
    try:
        if len(t) > 1 and t[0] == "0" and t[1] not in "xX":
            return int(t, 8)
        return int(t, 0)
    except ValueError:
        raise ValueError(f"not a number: {quote(s)}") from None


# value kinds: "n" cvtnum, "i" integer (strtoul base 0), "s" string, "x" int >= 0 (mapping index)
# Each spec: (flag letters, {letter: kind for valued options}, allowed positional layouts)
_IO_SPEC: dict[str, tuple[str, dict[str, str], tuple[tuple[str, ...], ...]]] = {
    "open": ("adfnrstxTRP", {"m": "i"}, (("s",),)),
    "close": ("", {}, ((),)),
    "pwrite": ("qdfuwWDRFBAZNO", {"S": "i", "b": "n", "i": "s", "s": "n", "V": "i"}, (("n", "n"),)),
    "pread": ("qvFBRdZ", {"b": "n", "V": "i"}, (("n", "n"),)),
    "truncate": ("", {}, (("n",),)),
    "falloc": ("kciupz", {}, (("n", "n"),)),
    "fpunch": ("", {}, (("n", "n"),)),
    "fzero": ("k", {}, (("n", "n"),)),
    "funshare": ("", {}, (("n", "n"),)),
    "reflink": ("Cq", {}, (("s",), ("s", "n", "n", "n"))),
    "dedupe": ("Cq", {}, (("s", "n", "n", "n"),)),
    "mmap": ("rwxiS", {"s": "n"}, ((), ("x",), ("n", "n"), ("n", "n", "n"))),
    "mread": ("frv", {}, ((), ("n", "n"))),
    "mwrite": ("r", {"S": "i"}, ((), ("n", "n"))),
    "msync": ("ais", {}, ((), ("n", "n"))),
    "munmap": ("", {}, ((),)),
    "fsync": ("", {}, ((),)),
    "fdatasync": ("", {}, ((),)),
    "stat": ("vr", {}, ((),)),
    "files": ("", {}, ((),)),
    "file": ("", {}, ((), ("x",))),
    "md5sum": ("", {}, ((),)),
}

#: Harness lines: name -> allowed positional layouts ("h" = md5 hex, "e" = errno name,
#: "sd" = same|differ, "d" = signed int, "o" = path:off owner list, "hx" = hex bytes,
#: "ih" = violated|holds, "nm" = n/m). key=value fields go to opts.
_AT_SPEC: dict[str, tuple[tuple[str, ...], ...]] = {
    "@mkfs": ((),),
    "@cycle_mount": ((),),
    "@sync": ((),),
    "@unlink": (("s",),),
    "@scratch_dev_fill": (("i",),),
    "@hwpoison": (("n", "n"),),
    "@expect_md5": (("s", "h"),),
    "@expect_cmp": (("s", "s", "sd"),),
    "@expect_range": (("s", "n", "s", "n", "n", "sd"),),
    "@expect_range_md5": (("s", "n", "n", "h"),),
    "@expect_errno": (("e",),),
    "@expect_bytes": (("n", "hx"),),
    "@expect_same_mapping": (("s", "s"),),
    "@statfs": (("s",),),
    "@expect_free_delta": (("s", "s", "d"),),
    "@expect_poison_owners": (("n", "o"),),
    "@expect_sigbus": ((),),
    "@model_shared_blocks": (("s", "nm"),),
    "@final": (("s",),),
    "@expect_invariant": (("s", "ih"),),
}
_AT_KEYS = {
    "@mkfs": {"size": "n"},
    "@expect_free_delta": {"tol": "pct"},
    "@final": {"size": "n", "md5": "h"},
}

#: Every command and harness line the parser knows.
COMMANDS = tuple(sorted(_IO_SPEC)) + tuple(sorted(_AT_SPEC))

_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")
#: Names an ``@expect_errno`` line may give: the host's errno names (Python's ``errno``
#: module: EINVAL, EBADE, ENOSPC...) and SIGBUS (how the model reports a fault's bus error).
_ERRNOS = frozenset(errno.errorcode.values()) | {"SIGBUS"}
_HEX = re.compile(r"^(0x)?([0-9a-fA-F]{2})+$")


#: A ``#`` at the start or after whitespace starts a comment, whatever follows it (quotes
#: included: ``# nocow'ing`` is a comment, not an open quotation).
_COMMENT = re.compile(r"(?:^|(?<=\s))#")


def _tokens(text: str, where: str) -> list[str]:
    m = _COMMENT.search(text)
    if m is not None:
        text = text[: m.start()]
    if not any(q in text for q in "'\"\\"):
        toks = text.split()  # the common case; shlex only for quoting
    else:
        try:
            toks = shlex.split(text, comments=False, posix=True)
        except ValueError as e:
            raise InputError(f"cannot split line: {e}", where=where) from None
    return toks


def _conv(kind: str, tok: str, what: str, where: str):
    try:
        if kind == "n":
            return cvtnum(tok)
        if kind == "i":
            return _strtoul(tok)
        if kind == "x":
            if not tok.isdigit():
                raise ValueError(f"not a mapping number: {tok!r}")
            return int(tok)
        if kind == "s":
            return tok
    except ValueError as e:
        raise InputError(f"{what}: {e}", where=where) from None
    raise AssertionError(kind)


def _parse_io(name: str, toks: list[str], where: str):
    flags, valued, layouts = _IO_SPEC[name]
    opts: dict = {}
    pos: list[str] = []
    i = 0
    only_pos = False
    while i < len(toks):
        t = toks[i]
        i += 1
        if only_pos or not t.startswith("-") or len(t) == 1 or t[1].isdigit():
            pos.append(t)
            continue
        if t == "--":
            only_pos = True
            continue
        j = 1
        while j < len(t):
            c = t[j]
            j += 1
            if c in valued:
                val = t[j:]
                if not val:
                    if i >= len(toks):
                        raise InputError(f"{name}: option -{c} needs a value", where=where)
                    val = toks[i]
                    i += 1
                opts[c] = _conv(valued[c], val, f"{name} -{c}", where)
                break
            if c in flags:
                opts[c] = True
                continue
            raise InputError(f"{name}: unknown option -{c}", where=where)
    if name == "mmap" and len(pos) == 1 and opts:
        # xfs_io: "mmap N" (argc == 2) selects a mapping; with options OFF LEN are required
        raise InputError("mmap: missing argument (want OFF LEN after options)", where=where)
    for lay in layouts:
        if len(lay) == len(pos):
            args = tuple(
                _conv(k, v, f"{name} argument {n + 1}", where)
                for n, (k, v) in enumerate(zip(lay, pos, strict=False))
            )
            return opts, args
    want = " or ".join(str(len(lay)) for lay in layouts)
    if len(pos) < max(len(lay) for lay in layouts):
        raise InputError(f"{name}: missing argument (got {len(pos)}, want {want})", where=where)
    raise InputError(f"{name}: too many arguments (got {len(pos)}, want {want})", where=where)


def _parse_at(name: str, toks: list[str], where: str):
    layouts = _AT_SPEC[name]
    keys = _AT_KEYS.get(name, {})
    opts: dict = {}
    pos: list[str] = []
    for t in toks:
        if "=" in t and t.split("=", 1)[0] in keys:
            k, v = t.split("=", 1)
            kind = keys[k]
            try:
                if kind == "n":
                    opts[k] = cvtnum(v)
                elif kind == "h":
                    if not _MD5.match(v):
                        raise ValueError(f"not an md5: {v!r}")
                    opts[k] = v.lower()
                elif kind == "pct":
                    if not v.endswith("%"):
                        raise ValueError(f"tolerance must be a percentage: {v!r}")
                    opts[k] = float(v[:-1]) / 100.0
            except ValueError as e:
                raise InputError(f"{name} {k}=: {e}", where=where) from None
        elif "=" in t and name in _AT_KEYS:
            raise InputError(f"{name}: unknown field {t.split('=', 1)[0]!r}", where=where)
        else:
            pos.append(t)
    lay = None
    for cand in layouts:
        if cand and cand[-1] in ("o", "hx"):
            if len(pos) >= len(cand):
                lay = cand
        elif len(cand) == len(pos):
            lay = cand
    if lay is None:
        want = max(len(c) for c in layouts)
        msg = "missing argument" if len(pos) < want else "too many arguments"
        raise InputError(f"{name}: {msg} (got {len(pos)})", where=where)
    args: list = []
    for n, kind in enumerate(lay):
        what = f"{name} argument {n + 1}"
        if kind == "o":
            owners = []
            for t in pos[n:]:
                path, sep, off = t.rpartition(":")
                if not sep or not path:
                    raise InputError(f"{what}: owner must be PATH:OFF, got {t!r}", where=where)
                owners.append((path, _conv("n", off, what, where)))
            args.extend(owners)
            break
        if kind == "hx":
            hx = "".join(pos[n:])
            if not _HEX.match(hx):
                raise InputError(f"{what}: not hex bytes: {hx!r}", where=where)
            args.append(hx[2:].lower() if hx.startswith("0x") else hx.lower())
            break
        t = pos[n]
        if kind == "h":
            if not _MD5.match(t):
                raise InputError(f"{what}: not an md5 sum: {t!r}", where=where)
            args.append(t.lower())
        elif kind == "e":
            if t not in _ERRNOS:
                raise InputError(
                    f"{what}: not an errno name: {t!r} (e.g. EINVAL, EBADE, "
                    f"ENOSPC, EFAULT, SIGBUS)",
                    where=where,
                )
            args.append(t)
        elif kind == "sd":
            if t not in ("same", "differ"):
                raise InputError(f"{what}: want same or differ, got {t!r}", where=where)
            args.append(t)
        elif kind == "ih":
            if t not in ("violated", "holds"):
                raise InputError(f"{what}: want violated or holds, got {t!r}", where=where)
            args.append(t)
        elif kind == "d":
            if not re.match(r"^[+-]?[0-9]+$", t):
                raise InputError(f"{what}: not a signed integer: {t!r}", where=where)
            args.append(int(t))
        elif kind == "nm":
            m = re.match(r"^([0-9]+)/([0-9]+)$", t)
            if not m:
                raise InputError(f"{what}: want N/M, got {t!r}", where=where)
            args.extend((int(m.group(1)), int(m.group(2))))
        else:
            args.append(_conv(kind, t, what, where))
    if name == "@final" and "size" not in opts:
        raise InputError("@final: missing size=", where=where)
    return opts, tuple(args)


def parse_command(line_text: str, filename: str, line: int) -> Command | None:
    """Parse one line; None for a blank or ``#`` comment line.

    Raises
    ------
    InputError
        Unknown command, bad option, bad size, missing or extra argument
        (``where="FILE:LINE"``).
    """
    where = f"{filename}:{line}"
    stripped = line_text.strip()
    if not stripped or stripped.startswith("#"):
        return None
    toks = _tokens(stripped, where)
    if not toks:
        return None
    name = toks[0]
    if name in _IO_SPEC:
        opts, args = _parse_io(name, toks[1:], where)
    elif name in _AT_SPEC:
        opts, args = _parse_at(name, toks[1:], where)
    else:
        raise InputError(f"unknown command {quote(name)}", where=where)
    return Command(line=line, name=name, opts=opts, args=args, text=line_text.rstrip("\n"))


def parse_script(text: str, filename: str) -> list[Command]:
    """Parse a whole script, skipping blank and ``#`` lines."""
    out: list[Command] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        c = parse_command(raw, filename, n)
        if c is not None:
            out.append(c)
    return out
