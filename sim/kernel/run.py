"""Conformance scripts on a real kernel: parse, run in one boot, evaluate every check on the host.

:func:`run_scripts` parses every script first (a malformed one is an
:class:`~sim.errors.InputError` before anything boots), turns each into an agent program
(:mod:`sim.kernel.program`), runs them all in one boot of the guest
(:func:`sim.kernel.guest.run_job`), and evaluates every ``@expect_*`` line from the agent's
reports with the meaning :mod:`sim.xfsio.runner` gives it (:func:`evaluate`).

Kernel truth and model-derived lines: ``@expect_*`` content checks (md5, ranges, bytes,
errno, free-block deltas, same mapping, SIGBUS) are evaluated against what the kernel did.
``@final`` and ``@model_shared_blocks`` are evaluated too (the file's size and md5, and the
shared/mapped block counts from FIEMAP's ``FIEMAP_EXTENT_SHARED``), but as *model* checks:
counted apart, never in ``checks_passed``/``checks_failed``, because XFS may CoW in larger
units than the reference model. ``@expect_poison_owners`` is a model check whose kernel value
is the file offset the agent was signalled for (``si_addr`` of the SIGBUS, mapped back
through the agent's mapping table): a single process receives one SIGBUS for a ``madvise``
however many of its mappings the kernel signals (a standard signal does not queue twice), so
the line holds when that owner is among the expected ones, and a line about another page of
the range is listed as not observable; the dmesg lines of ``memory_failure`` are kept with
the result. ``@expect_invariant`` lines name model state
(residue, phantom pages) except ``no_warnings``, which the kernel's splats decide; the others
are listed as not observable on a kernel.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import InputError
from sim.kernel.program import build_program
from sim.xfsio.parse import FS_BLOCK_SIZE, parse_script
from sim.xfsio.runner import Check

__all__ = [
    "ScriptResult",
    "KernelRun",
    "evaluate",
    "parse_reports",
    "prepare_scripts",
    "run_scripts",
    "guest_name",
    "unmount_error",
    "crash_text",
    "crash_where",
]

#: FIEMAP extent flags (include/uapi/linux/fiemap.h)
FIEMAP_EXTENT_LAST = 0x1
FIEMAP_EXTENT_UNWRITTEN = 0x800
FIEMAP_EXTENT_SHARED = 0x2000
_MF_LINE = re.compile(r"Memory failure: (0x[0-9a-fA-F]+): (.*)")


@dataclass
class ScriptResult:
    """What one script did on the kernel.

    Attributes
    ----------
    script : str
        The script's path as given.
    checks : list of Check
        Every evaluated line (content and model-derived), as :mod:`sim.xfsio.runner` builds them.
    md5 : dict
        Path -> md5 of every file at the end (None when larger than the agent hashes).
    sizes, extents : dict
        Path -> size in bytes; path -> FIEMAP extents ``[logical, physical, length, flags]``.
    warnings : list of dict
        WARN/BUG splats (``file``, ``line``, ``function``, ``site``).
    faults : dict
        ``pte``, ``pmd``, ``pmd_fallback`` fault counts from the fs_dax tracepoints.
    sigbus : bool
        Some command of the script got a SIGBUS.
    poison : list of dict
        One entry per ``@hwpoison``: line, sigbus, si_code, signalled path and file offset.
    memory_failure : list of dict
        The kernel's ``Memory failure:`` lines of the script (pfn, message).
    free_blocks : dict
        ``@statfs`` sample name -> free 4 KiB blocks.
    unobserved : list of str
        ``@expect_invariant`` lines a kernel cannot decide.
    exit_status : int
        The agent's exit status (-1 when it never ran).
    lost_trace_events : int
        fs_dax events the trace buffer overwrote (the fault counts are short by up to this).
    error : str or None
        Why the script did not run to its end (agent stopped, guest timed out), or why its
        struct pages could not be made fresh before it.
    reset_s : float or None
        Seconds the guest spent giving the pmem fresh struct pages before the script (None
        for the first script of a boot, which starts from the boot's).
    crash : str or None
        The console line of a kernel oops during the script (``kernel BUG at FILE:LINE!``);
        ``error`` then says which site and where (:func:`crash_text`).
    """

    script: str
    checks: list = field(default_factory=list)
    md5: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)
    extents: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    faults: dict = field(default_factory=dict)
    sigbus: bool = False
    poison: list = field(default_factory=list)
    memory_failure: list = field(default_factory=list)
    free_blocks: dict = field(default_factory=dict)
    unobserved: list = field(default_factory=list)
    exit_status: int = -1
    lost_trace_events: int = 0
    error: str | None = None
    reports: list = field(default_factory=list)
    dmesg: str = ""
    reset_s: float | None = None
    crash: str | None = None

    def counts(self) -> dict:
        """Passed and failed checks, content and model-derived apart."""
        c = self.checks
        return {
            "checks_passed": sum(1 for k in c if k.ok and not k.model),
            "checks_failed": sum(1 for k in c if not k.ok and not k.model),
            "model_checks_passed": sum(1 for k in c if k.ok and k.model),
            "model_checks_failed": sum(1 for k in c if not k.ok and k.model),
        }

    @property
    def ok(self) -> bool:
        """Every content check held and the script ran to its end."""
        return self.error is None and not any(not k.ok and not k.model for k in self.checks)

    def to_json(self) -> dict:
        """The per-script object of ``daxsim kernel run --json``."""
        out = {"script": self.script}
        out.update(self.counts())
        out.update(
            {
                "warnings": self.warnings,
                "faults": self.faults,
                "md5": self.md5,
                "sigbus": self.sigbus,
                "poison": self.poison,
                "memory_failure": self.memory_failure,
                "free_blocks": self.free_blocks,
                "lost_trace_events": self.lost_trace_events,
                "failed": [
                    k.describe(self.script) for k in self.checks if not k.ok and not k.model
                ],
                "model_failed": [
                    k.describe(self.script) for k in self.checks if not k.ok and k.model
                ],
                "unobserved": self.unobserved,
                "exit_status": self.exit_status,
                "error": self.error,
                "crash": self.crash,
                "reset_s": self.reset_s,
            }
        )
        return out


@dataclass
class KernelRun:
    """The scripts of one boot."""

    kernel: object
    scripts: list
    timed_out: bool = False
    boot_log: str = ""
    iomem: str = ""  # the guest's /proc/iomem and pfn device (sim.kernel.pagestate.data_area)

    @property
    def ok(self) -> bool:
        """Every script ran to its end with every content check holding."""
        return not self.timed_out and all(s.ok for s in self.scripts)

    def to_json(self) -> dict:
        """The JSON of ``daxsim kernel run --json`` (issue 14 section 3)."""
        k = self.kernel
        return {
            "kernel": getattr(k, "name", str(k)),
            "release": getattr(k, "version", ""),
            "uname_release": getattr(k, "release", ""),
            "design": getattr(k, "design", ""),
            "timed_out": self.timed_out,
            "scripts": [s.to_json() for s in self.scripts],
        }


# ---------------------------------------------------------------------- reports
def parse_reports(stdout: str) -> list[dict]:
    """The agent's JSON lines (anything else on its stdout is skipped)."""
    out = []
    for ln in stdout.splitlines():
        ln = ln.strip()
        if ln.startswith("{"):
            try:
                out.append(json.loads(ln))
            except json.JSONDecodeError:
                continue
    return out


def _blocks(n_bytes: int) -> int:
    return -(-int(n_bytes) // FS_BLOCK_SIZE)


def _extents_in(rep: dict) -> tuple[int, list]:
    """(size, extents clipped to the file's blocks) of a fiemap report; adjacent extents merged
    so that two files sharing every block compare equal however FIEMAP splits them."""
    size = int(rep.get("size", 0))
    end = _blocks(size) * FS_BLOCK_SIZE
    out: list = []
    for lo, ph, ln, fl in rep.get("extents", []):
        if lo >= end:
            continue
        ln = min(ln, end - lo)
        unwritten = bool(fl & FIEMAP_EXTENT_UNWRITTEN)
        if out and out[-1][0] + out[-1][2] == lo and out[-1][1] + out[-1][2] == ph:
            if out[-1][3] == unwritten:
                out[-1][2] += ln
                continue
        out.append([lo, ph, ln, unwritten])
    return size, out


def _errno(rep: dict | None) -> str:
    if rep is None:
        return "no report"
    return str(rep.get("errno", "?"))


def evaluate(commands, reports: list[dict], filename: str, *, warnings=None) -> ScriptResult:
    """Evaluate every check of a script from the agent's reports.

    The rules are those of :class:`sim.xfsio.runner.XfsioRunner.step`: a command that fails is
    held as pending; an ``@expect_errno`` right after consumes it (its errno must match); an
    ``@expect_sigbus`` consumes a pending SIGBUS; any other line makes a pending failure a
    failed ``command`` check at the failing line.

    Parameters
    ----------
    commands : list of Command
        The parsed script.
    reports : list of dict
        The agent's reports (:func:`parse_reports`).
    filename : str
        The script's name.
    warnings : list of dict, optional
        The kernel's splats for this script (decides ``@expect_invariant no_warnings``).

    Returns
    -------
    ScriptResult
    """
    res = ScriptResult(script=filename, reports=reports)
    by_line: dict[int, list] = {}
    for r in reports:
        by_line.setdefault(int(r.get("line", -1)), []).append(r)
    final = next((r for r in reports if r.get("op") == "final"), None)
    last_line = max((int(r.get("line", -1)) for r in reports), default=-1)
    checks = res.checks

    def check(cmd, kind, ok, expected, found, model=False):
        checks.append(Check(cmd.line, kind, bool(ok), str(expected), str(found), model, cmd.text))

    for r in by_line.get(0, []):  # the implicit @mkfs of a script that does not start with one
        if not r.get("ok"):
            checks.append(Check(0, "command", False, "success", _errno(r), False, "@mkfs"))

    pending = None  # (line, text, errno)
    last_poison = None
    for cmd in commands:
        name, a = cmd.name, cmd.args
        reps = by_line.get(cmd.line, [])
        rep = reps[0] if reps else None
        ran = final is not None or cmd.line <= last_line
        if name == "@expect_errno":
            want = str(a[0])
            if pending is None:
                check(cmd, "expect_errno", False, want, "success")
            else:
                check(cmd, "expect_errno", pending[2] == want, want, pending[2])
            pending = None
            continue
        if name == "@expect_sigbus" and pending is not None and pending[2] == "SIGBUS":
            check(cmd, "expect_sigbus", True, "SIGBUS", "SIGBUS (fault beyond EOF)")
            pending = None
            continue
        if pending is not None:
            checks.append(
                Check(pending[0], "command", False, "success", pending[2], False, pending[1])
            )
            pending = None
        if not ran:
            checks.append(Check(cmd.line, "command", False, "success", "not run", False, cmd.text))
            continue
        if not name.startswith(("@expect", "@final", "@model")):
            if rep is not None and not rep.get("ok"):
                pending = (cmd.line, cmd.text, _errno(rep))
            if rep is not None and rep.get("errno") == "SIGBUS":
                res.sigbus = True
            if name == "@hwpoison" and rep is not None:
                sb = rep.get("sigbus") or {}
                last_poison = rep
                res.poison.append(
                    {
                        "line": cmd.line,
                        "sigbus": bool(sb),
                        "si_code": sb.get("code"),
                        "path": sb.get("path"),
                        "file_off": sb.get("file_off"),
                        "madvise_errno": rep.get("errno") if rep.get("errno") != "SIGBUS" else None,
                    }
                )
                if rep.get("errno") == "SIGBUS":
                    pending = None  # the poisoner's SIGBUS is the expected outcome
            if name == "@statfs" and rep is not None and rep.get("ok"):
                res.free_blocks[str(a[0])] = (
                    int(rep["free_blocks"]) * int(rep["bsize"]) // FS_BLOCK_SIZE
                )
            continue
        # ------------------------------------------------------------ checks
        if name == "@expect_md5":
            got = rep.get("md5") if rep and rep.get("ok") else _errno(rep)
            check(cmd, "expect_md5", got == a[1], f"{a[0]} md5 {a[1]}", got)
        elif name == "@expect_range_md5":
            got = rep.get("md5") if rep and rep.get("ok") else _errno(rep)
            check(cmd, "expect_range_md5", got == a[3], f"{a[0]} [{a[1]}+{a[2]}] md5 {a[3]}", got)
        elif name in ("@expect_cmp", "@expect_range"):
            word = a[2] if name == "@expect_cmp" else a[5]
            if rep and rep.get("ok"):
                found = "same" if rep.get("same") else "differ"
                ok = found == word
            else:
                found, ok = _errno(rep), False
            exp = f"{a[0]} {a[1]} {a[2]}" if name == "@expect_cmp" else " ".join(map(str, a))
            check(cmd, name[1:], ok, exp, found)
        elif name == "@expect_bytes":
            got = (rep or {}).get("hex", "")
            check(cmd, "expect_bytes", got == a[1], a[1], got or "(no data)")
        elif name == "@expect_same_mapping":
            if len(reps) == 2 and all(r.get("ok") for r in reps):
                sa, ea = _extents_in(reps[0])
                sb, eb = _extents_in(reps[1])
                ok = _blocks(sa) == _blocks(sb) and ea == eb
                found = "same mapping" if ok else f"{len(ea)} vs {len(eb)} extents differ"
            else:
                ok, found = False, next((_errno(r) for r in reps if not r.get("ok")), "no report")
            check(cmd, "expect_same_mapping", ok, f"{a[0]} and {a[1]} share every block", found)
        elif name == "@expect_free_delta":
            sa, sb, d = str(a[0]), str(a[1]), int(a[2])
            if sa not in res.free_blocks or sb not in res.free_blocks:
                check(cmd, "expect_free_delta", False, f"samples {sa} {sb}", "no sample")
                continue
            got = res.free_blocks[sa] - res.free_blocks[sb]
            tolf = float(cmd.opts.get("tol", 0.0))
            slack = tolf * abs(res.free_blocks[sb] + d)
            check(
                cmd,
                "expect_free_delta",
                abs(got - d) <= slack,
                f"free({sa})-free({sb}) = {d:+d} (tol {tolf:.0%})",
                f"{got:+d}",
            )
        elif name == "@expect_sigbus":
            got = last_poison is not None and last_poison.get("errno") == "SIGBUS"
            check(
                cmd,
                "expect_sigbus",
                got,
                "SIGBUS to the poisoner",
                "SIGBUS" if got else "no SIGBUS",
            )
        elif name == "@expect_poison_owners":
            want = sorted(f"{p}:{o}" for p, o in a[1:])
            sb = (last_poison or {}).get("sigbus") or {}
            if sb.get("path") is not None:
                off = int(sb["file_off"]) // FS_BLOCK_SIZE * FS_BLOCK_SIZE
                if int(a[0]) // FS_BLOCK_SIZE * FS_BLOCK_SIZE != off:
                    # the one SIGBUS delivered names another page of the range
                    res.unobserved.append(f"{filename}:{cmd.line}: {cmd.text.strip()}")
                    continue
                found = f"signalled {sb['path']}:{off}"
                ok = f"{sb['path']}:{off}" in want
            else:
                found, ok = "no SIGBUS with an address in a mapping", False
            check(cmd, "expect_poison_owners", ok, " ".join(want), found, model=True)
        elif name == "@final":
            if rep and rep.get("ok"):
                found = [f"size={rep['size']}"]
                want = [f"size={cmd.opts['size']}"]
                ok = int(rep["size"]) == int(cmd.opts["size"])
                if "md5" in cmd.opts:
                    want.append(f"md5={cmd.opts['md5']}")
                    found.append(f"md5={rep['md5']}")
                    ok &= rep["md5"] == cmd.opts["md5"]
            else:
                ok, want, found = False, [str(a[0])], [_errno(rep)]
            check(cmd, "final", ok, f"{a[0]} " + " ".join(want), " ".join(found), model=True)
        elif name == "@model_shared_blocks":
            if rep and rep.get("ok"):
                size = int(rep.get("size", 0))
                end = _blocks(size) * FS_BLOCK_SIZE
                shared = mapped = 0
                for lo, _ph, ln, fl in rep.get("extents", []):
                    ln = max(0, min(ln, end - lo))
                    mapped += ln // FS_BLOCK_SIZE
                    if fl & FIEMAP_EXTENT_SHARED:
                        shared += ln // FS_BLOCK_SIZE
                got = f"{shared}/{mapped}"
            else:
                got = _errno(rep)
            want = f"{a[1]}/{a[2]}"
            check(cmd, "model_shared_blocks", got == want, f"{a[0]} {want}", got, model=True)
        elif name == "@expect_invariant":
            if a[0] == "no_warnings" and warnings is not None:
                holds = not warnings
                check(
                    cmd,
                    "expect_invariant",
                    holds == (a[1] == "holds"),
                    f"{a[0]} {a[1]}",
                    f"{a[0]} {'holds' if holds else 'violated'}",
                )
            else:
                res.unobserved.append(f"{filename}:{cmd.line}: {cmd.text.strip()}")
    if pending is not None:
        checks.append(Check(pending[0], "command", False, "success", pending[2], False, pending[1]))
    if final is not None:
        for f in final.get("files", []):
            res.md5[f["path"]] = f.get("md5")
            res.sizes[f["path"]] = int(f["size"])
            res.extents[f["path"]] = f.get("extents", [])
    return res


def crash_text(site: str, where: str) -> str:
    """How a script stopped at a kernel BUG, the same words on both sides of ``kernel
    compare`` (the kernel's ``error``, daxsim's ``completed``): ``site`` is the daxsim site
    (or ``FILE:LINE``), ``where`` ``"the unmount"`` or ``"line N"``."""
    return f"kernel BUG {site} at {where}"


def crash_where(commands, reports: list[dict]) -> str:
    """Where the agent died: ``"the unmount"`` when it reported its end (the final md5s and
    extents come right before its unmount), else ``"line N"`` of the first command it did
    not report (an agent reports each command once it returns)."""
    if any(r.get("op") == "final" for r in reports):
        return "the unmount"
    last = max((int(r.get("line", -1)) for r in reports), default=-1)
    for cmd in commands:
        if cmd.line > last and not cmd.name.startswith(("@expect", "@final", "@model")):
            return f"line {cmd.line}"
    return "the unmount"


def _crash_site(line: str, kernel) -> str:
    """The daxsim site of an oops line (``kernel BUG at FILE:LINE!``), else ``FILE:LINE``,
    else the line itself."""
    from sim.kernel.splat import parse_splats

    sp = parse_splats(line, kernel)
    if not sp:
        return line
    return sp[0]["site"] or f"{sp[0]['file']}:{sp[0]['line']}"


def unmount_error(reports: list[dict]) -> str | None:
    """Why the agent's unmount at the end of a script failed (its ``umount`` report), else
    None. The evictions of a filesystem left mounted run later (``/init`` unmounts it, or the
    next script's ``@mkfs``), and their warnings may land in another script's kernel log."""
    rep = next((r for r in reversed(reports) if r.get("op") == "umount"), None)
    if rep is None or rep.get("ok", False):
        return None
    return f"the unmount at the end failed ({rep.get('errno', 'no errno')})"


def guest_name(index: int, path: str) -> str:
    """The name a script runs under in the guest: unique and safe as a file name."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(path).stem)[:48]
    return f"s{index:03d}-{stem}"


def prepare_scripts(paths, *, pause: bool = False) -> list[tuple[str, str, list, bytes]]:
    """Read and parse every script and build its program (nothing boots).

    Returns
    -------
    list of (path, guest name, commands, program)

    Raises
    ------
    InputError
        A script that cannot be read or parsed, or a line the rig cannot run.
    """
    out = []
    for i, p in enumerate(paths):
        p = str(p)
        try:
            text = Path(p).read_text()
        except OSError as exc:
            raise InputError(f"cannot read script: {exc.strerror}", where=p) from None
        except UnicodeDecodeError:
            raise InputError("not a text file", where=p) from None
        cmds = parse_script(text, p)
        name = guest_name(i, p)
        prog = build_program(cmds, filename=p, pause_name=name if pause else None)
        out.append((p, name, cmds, prog))
    if not out:
        raise InputError("no script given")
    return out


def _memory_failure_lines(dmesg: str) -> list[dict]:
    out = []
    for ln in dmesg.splitlines():
        m = _MF_LINE.search(ln)
        if m:
            out.append({"pfn": m.group(1), "message": m.group(2).strip()})
    return out


def run_scripts(
    kernel,
    paths,
    *,
    pause=None,
    timeout_s: float | None = None,
    script_timeout_s: float | None = None,
) -> KernelRun:
    """Run conformance scripts on a kernel in one boot and evaluate their checks.

    Parameters
    ----------
    kernel : sim.kernel.cache.KernelInfo
        The kernel to boot.
    paths : list of str or Path
        Scripts (``*.xfsio``); all are parsed before anything boots.
    pause : callable, optional
        ``pause(monitor, guest_name)`` called before each script's unmount (page state).
    timeout_s : float, optional
        Kill the guest after this many seconds (default: the guest module's).
    script_timeout_s : float, optional
        Kill the guest when one script runs longer than this (default: the guest module's,
        600 s); a long script (xfs/265, generic/175) needs more under TCG.

    Returns
    -------
    KernelRun

    Raises
    ------
    InputError
        A malformed script (before the guest boots).
    """
    prepared = prepare_scripts(paths, pause=pause is not None)
    from sim.kernel.guest import GuestScript, run_job
    from sim.kernel.splat import fault_counts, lost_events, parse_splats

    jobs = [GuestScript(name=name, program=prog) for _p, name, _c, prog in prepared]
    kw = {"pause": pause}
    if timeout_s is not None:
        kw["timeout_s"] = timeout_s
    if script_timeout_s is not None:
        kw["script_timeout_s"] = script_timeout_s
    job = run_job(kernel, jobs, **kw)
    outs = {o.name: o for o in job.scripts}
    results = []
    for path, name, cmds, _prog in prepared:
        o = outs.get(name)
        if o is None:
            r = evaluate(cmds, [], path, warnings=None)
            r.error = "guest timed out before the script ran" if job.timed_out else "no output"
            results.append(r)
            continue
        warnings = parse_splats(o.dmesg, kernel)
        r = evaluate(cmds, parse_reports(o.agent_stdout), path, warnings=warnings)
        r.warnings = warnings
        r.faults = fault_counts(o.trace)
        r.lost_trace_events = lost_events(o.trace)
        r.memory_failure = _memory_failure_lines(o.dmesg)
        r.exit_status = int(o.exit_status)
        r.dmesg = o.dmesg
        r.reset_s = o.reset_s
        r.crash = getattr(o, "crash", None)
        if r.crash is not None:  # the guest was killed after it (run_job)
            r.error = crash_text(_crash_site(r.crash, kernel), crash_where(cmds, r.reports))
        elif not any(rep.get("op") == "umount" for rep in r.reports):
            r.error = "timed out" if job.timed_out else f"agent stopped (exit {o.exit_status})"
        elif unmount_error(r.reports) is not None:
            r.error = unmount_error(r.reports)
        elif o.reset_error is not None:
            r.error = f"struct pages not made fresh before the script: {o.reset_error}"
        results.append(r)
    return KernelRun(
        kernel=kernel,
        scripts=results,
        timed_out=job.timed_out,
        boot_log=job.boot_log,
        iomem=job.iomem,
    )
