"""Side by side: each script on a real kernel and in daxsim under that kernel's design.

One row per script x kernel x observation (``compare.parquet``):

``check LINE KIND``
    Every check's outcome (``pass``/``fail``; model-derived checks are ``model LINE KIND``).
``md5 PATH``, ``size PATH``
    Every file at the end of the script (files above
    :data:`sim.kernel.program.FINAL_MD5_MAX_BYTES` are compared by size only, on both sides).
``warning sites``
    The set of daxsim warning sites (kernel: the sites :func:`sim.kernel.splat.parse_splats`
    gives; a splat with no daxsim site is named ``FILE:LINE``).
``faults pte``, ``faults pmd``, ``faults pmd_fallback``
    Kernel: ``dax_pte_fault_done`` / ``dax_pmd_fault_done`` events
    (:func:`sim.kernel.splat.fault_counts`); daxsim: its ``pte_faults``, ``pmd_faults`` and
    ``pmd_fallbacks`` counters over the whole script.
``sigbus``
    Some command got a SIGBUS.
``poison LINE``
    For each ``@hwpoison``: the owner the kernel signalled the agent for (one standard signal
    per ``madvise``, so one owner) must be among the owners daxsim finds for the poisoned pages
    (its reverse map, or ``page->mapping`` without rmapbt).
``free_delta LINE``
    For each ``@expect_free_delta``: the two deltas agree within the line's tolerance
    (``tol=``; allocators and metadata differ), as xfstests' ``_within_tolerance`` does.
``completed``
    The script ran to its end on the kernel (``yes``), or where a kernel BUG stopped it
    (:func:`sim.kernel.run.crash_text`: daxsim's when a ``BUG_ON`` site it counts, such as
    clear_inode's ``clear_inode_nrpages``, fires at a line or at the final unmount).
``residue_pages``, ``phantom_pages``, ``share_degrees``, ``pages PATH:OFF+LEN``
    When the run read the struct pages (``kr.capture``, :class:`sim.kernel.pagestate.PageCapture`,
    as ``daxsim kernel compare`` does): the page state before the unmount against daxsim's
    before its unmount (:func:`sim.kernel.pagestate.page_observations`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.constants import PAGE_SIZE
from sim.kernel.program import FINAL_MD5_MAX_BYTES
from sim.kernel.run import KernelRun, ScriptResult, crash_text
from sim.memmap.layout import BUG_SITES

__all__ = [
    "DaxsimObservation",
    "run_daxsim",
    "observations",
    "compare_rows",
    "agreement_table",
    "COLUMNS",
]

PAGE = PAGE_SIZE
#: Columns of compare.parquet, in order.
COLUMNS = (
    "script",
    "kernel",
    "release",
    "design",
    "observation",
    "kernel_value",
    "daxsim_value",
    "agree",
)


@dataclass
class DaxsimObservation:
    """What daxsim computed for one script under one design."""

    checks: list
    md5: dict
    sizes: dict
    warning_sites: list
    faults: dict
    sigbus: bool
    poison: dict  # @hwpoison line -> sorted owners "path:off"
    free_delta: dict  # @expect_free_delta line -> delta
    completed: str = "yes"  # or where a BUG site fired (sim.kernel.run.crash_text)


def run_daxsim(commands, filename: str, design: str) -> DaxsimObservation:
    """Run a parsed script in daxsim under ``design`` (:class:`sim.xfsio.runner.XfsioRunner`).

    Parameters
    ----------
    commands : list of Command
        The parsed script.
    filename : str
        The script's name.
    design : str
        A daxsim design variant name (the kernel's :attr:`KernelInfo.design`).

    Returns
    -------
    DaxsimObservation
    """
    from sim.hunt.invariants import runner_invariants
    from sim.xfsio.runner import RIG_STRIPE_UNIT_BYTES, XfsioRunner

    # the invariants the hunt's reproducers name, as `daxsim xfsio` replays them
    r = XfsioRunner(
        design,
        filename=filename,
        invariants=runner_invariants(),
        stripe_unit_bytes=RIG_STRIPE_UNIT_BYTES,  # the rig's @mkfs: mkfs.xfs -d su=2m,sw=1
    )
    sigbus = False
    poison: dict = {}
    completed = "yes"

    def bug_fired(where: str) -> str:
        """``completed`` after a step: the first BUG site that fired (the kernels' task dies
        there; daxsim goes on)."""
        w = r.dax.mm.warnings
        fired = [s for s in BUG_SITES if w.get(s, 0) > bugs0.get(s, 0)]
        return crash_text(fired[0], where) if fired else "yes"

    bugs0 = dict(r.dax.mm.warnings)
    for cmd in commands:
        r.step(cmd)
        if completed == "yes":
            completed = bug_fired(f"line {cmd.line}")
        if r.last_error is not None and r.last_error.errno == "SIGBUS":
            sigbus = True
        if cmd.name == "@hwpoison" and r.last_poison is not None:
            res = r.last_poison[2]
            sigbus |= bool(res.sigbus_poisoner)
            owners = res.rmap_owners if r.dax.rmap else res.fallback_owners
            fs = r.dax.fs
            poison[cmd.line] = sorted(
                {
                    f"{fs.path_of(ino) or ino}:{fb * PAGE}"
                    for pfn in res.pfns
                    for ino, fb in owners.get(pfn, [])
                }
            )
    r._flush_pending()  # noqa: SLF001 (the runner's end-of-script rule, as run() applies it)
    r.dax.unmount()  # every script ends with an unmount on the kernel: eviction on both sides
    if completed == "yes":
        completed = bug_fired("the unmount")
    fs = r.dax.fs
    md5, sizes = {}, {}
    for p in fs.paths():
        ino = fs.lookup(p)
        sizes[p] = int(fs.size(ino))
        md5[p] = fs.md5(ino) if sizes[p] <= FINAL_MD5_MAX_BYTES else None
    s = r.summary()
    sites = sorted(k[len("warn_") :] for k, v in s.items() if k.startswith("warn_") and v)
    free_delta = {c.line: int(c.found) for c in r.result.checks if c.kind == "expect_free_delta"}
    return DaxsimObservation(
        checks=list(r.result.checks),
        md5=md5,
        sizes=sizes,
        warning_sites=sites,
        faults={
            "pte": int(s.get("pte_faults", 0)),
            "pmd": int(s.get("pmd_faults", 0)),
            "pmd_fallback": int(s.get("pmd_fallbacks", 0)),
        },
        sigbus=sigbus,
        poison=poison,
        free_delta=free_delta,
        completed=completed,
    )


def _check_keys(checks) -> dict:
    """``check LINE KIND`` (``model ...`` for model-derived) -> pass/fail; a second check of
    the same kind on one line gets ``#2``."""
    out: dict = {}
    for c in checks:
        if c.kind == "expect_poison_owners":
            continue  # a kernel signals one owner per madvise: the ``poison LINE`` rows
        base = f"{'model' if c.model else 'check'} {c.line} {c.kind}"
        key, n = base, 1
        while key in out:
            n += 1
            key = f"{base} #{n}"
        out[key] = "pass" if c.ok else "fail"
    return out


def _kernel_sites(res: ScriptResult) -> list:
    return sorted({w.get("site") or f"{w.get('file')}:{w.get('line')}" for w in res.warnings})


def observations(commands, res: ScriptResult, sim: DaxsimObservation) -> list[tuple]:
    """(observation, kernel value, daxsim value, agree) of one script on one kernel."""
    rows: list[tuple] = []
    kc, dc = _check_keys(res.checks), _check_keys(sim.checks)
    for key in sorted(set(kc) | set(dc), key=lambda k: (int(k.split()[1]), k)):
        a, b = kc.get(key, "absent"), dc.get(key, "absent")
        rows.append((key, a, b, a == b))
    for p in sorted(set(res.sizes) | set(sim.sizes)):
        ks, ds = res.sizes.get(p), sim.sizes.get(p)
        rows.append((f"size {p}", str(ks), str(ds), ks == ds))
        km, dm = res.md5.get(p), sim.md5.get(p)
        if km is None and dm is None and ks is not None and ds is not None:
            continue  # too large to hash: compared by size
        rows.append((f"md5 {p}", str(km), str(dm), km == dm and km is not None))
    ks, ds = _kernel_sites(res), sim.warning_sites
    rows.append(("warning sites", ",".join(ks) or "-", ",".join(ds) or "-", ks == ds))
    lost = getattr(res, "lost_trace_events", 0)
    for k in ("pte", "pmd", "pmd_fallback"):
        a, b = res.faults.get(k), sim.faults.get(k)
        kv = f"{a} (+{lost} events lost)" if lost else str(a)
        rows.append((f"faults {k}", kv, str(b), a == b and not lost))
    rows.append(("sigbus", str(res.sigbus), str(sim.sigbus), res.sigbus == sim.sigbus))
    kpois = {p["line"]: p for p in res.poison}
    for line in sorted(set(kpois) | set(sim.poison)):
        kp = kpois.get(line) or {}
        if kp.get("path") is not None:
            kv = f"{kp['path']}:{int(kp['file_off']) // PAGE * PAGE}"
        else:
            kv = "no signal"
        dv = sim.poison.get(line, [])
        rows.append((f"poison {line}", kv, " ".join(dv) or "-", kv in dv))
    deltas = {c.line: c for c in commands if c.name == "@expect_free_delta"}
    kdel = {c.line: int(c.found) for c in res.checks if c.kind == "expect_free_delta"}
    for line in sorted(deltas):
        cmd = deltas[line]
        kv, dv = kdel.get(line), sim.free_delta.get(line)
        if kv is None or dv is None:
            rows.append((f"free_delta {line}", str(kv), str(dv), False))
            continue
        tol = float(cmd.opts.get("tol", 0.0))
        base = res.free_blocks.get(str(cmd.args[1]), 0)
        rows.append(
            (f"free_delta {line}", f"{kv:+d}", f"{dv:+d}", abs(kv - dv) <= tol * abs(base + dv))
        )
    kdone = res.error or "yes"
    rows.append(("completed", kdone, sim.completed, kdone == sim.completed))
    return rows


def _page_rows(kr: KernelRun, index: int, res: ScriptResult, cmds) -> list[tuple]:
    """Page-state observations of the script ``index`` of a run whose struct pages were read
    (``kr.capture``, a :class:`sim.kernel.pagestate.PageCapture`); none otherwise."""
    capture = getattr(kr, "capture", None)
    if capture is None:
        return []
    from sim.kernel import pagestate as ps
    from sim.kernel.run import guest_name

    name = guest_name(index, res.script)
    pages = capture.pages.get(name)
    if pages is None:
        why = capture.errors.get(name, "not read")
        return [("page state", why, "-", False)]
    design = kr.kernel.design
    dax = ps.daxsim_before_unmount(cmds, res.script, design)
    base = capture.pages.get(name + ps.BASELINE_SUFFIX)
    try:
        return ps.page_observations(pages, res.reports, kr.iomem, design, dax, base)
    except ValueError as exc:  # no final report (the script stopped), pages not the pmem's
        return [("page state", str(exc), "-", False)]


def compare_rows(
    kernel_runs: list[KernelRun], parsed: dict, sims: dict | None = None
) -> list[dict]:
    """Rows of compare.parquet for every kernel run.

    Parameters
    ----------
    kernel_runs : list of KernelRun
        One per kernel (:func:`sim.kernel.run.run_scripts`).
    parsed : dict
        Script path -> parsed commands.
    sims : dict, optional
        ``(script path, design)`` -> :class:`DaxsimObservation` computed beforehand (the
        command runs daxsim first, so that a script daxsim refuses stops it before any
        boot); the missing ones are computed here.

    Returns
    -------
    list of dict
        Keyed by :data:`COLUMNS`.
    """
    rows = []
    for kr in kernel_runs:
        k = kr.kernel
        design = k.design
        for i, res in enumerate(kr.scripts):
            cmds = parsed[res.script]
            sim = (sims or {}).get((res.script, design)) or run_daxsim(cmds, res.script, design)
            obs_rows = observations(cmds, res, sim) + _page_rows(kr, i, res, cmds)
            for obs, kv, dv, agree in obs_rows:
                rows.append(
                    {
                        "script": res.script,
                        "kernel": k.name,
                        "release": k.version,
                        "design": design,
                        "observation": obs,
                        "kernel_value": kv,
                        "daxsim_value": dv,
                        "agree": bool(agree),
                    }
                )
    return rows


def _kind(observation: str) -> str:
    """The row of the agreement table an observation counts in."""
    head = observation.split(" ", 1)[0]
    if head in ("check", "model"):
        return "checks" if head == "check" else "model-derived checks"
    if head in ("md5", "size"):
        return "files at the end (md5, size)"
    if head == "faults":
        return observation
    if head == "warning":
        return "warning sites"
    if head in ("pages", "residue_pages", "phantom_pages", "share_degrees", "page"):
        return "page state" if head in ("pages", "page") else head
    return {"poison": "memory-failure owner", "free_delta": "free-block deltas"}.get(head, head)


def agreement_table(rows: list[dict]) -> str:
    """A markdown table of ``rows`` (:func:`compare_rows`): per kind of observation and kernel,
    how many agree out of how many, then every disagreement.

    Parameters
    ----------
    rows : list of dict
        Rows keyed by :data:`COLUMNS`.

    Returns
    -------
    str
        Markdown text.
    """
    kernels: list = []
    for r in rows:
        k = f"{r['kernel']} ({r['design']})"
        if k not in kernels:
            kernels.append(k)
    kinds: list = []
    cells: dict = {}
    for r in rows:
        kind = _kind(r["observation"])
        if kind not in kinds:
            kinds.append(kind)
        c = cells.setdefault((kind, f"{r['kernel']} ({r['design']})"), [0, 0])
        c[0] += bool(r["agree"])
        c[1] += 1
    out = ["| observation | " + " | ".join(kernels) + " |", "|---|" + "---|" * len(kernels)]
    for kind in kinds:
        vals = []
        for k in kernels:
            a, n = cells.get((kind, k), (0, 0))
            vals.append(f"{a}/{n}" if n else "-")
        out.append(f"| {kind} | " + " | ".join(vals) + " |")
    bad = [r for r in rows if not r["agree"]]
    if bad:
        out += ["", "Disagreements:", ""]
        out += [
            f"- {r['script'].rsplit('/', 1)[-1]} on {r['kernel']} ({r['design']}): "
            f"{r['observation']}: kernel {r['kernel_value']}, daxsim {r['daxsim_value']}"
            for r in bad
        ]
    return "\n".join(out) + "\n"
