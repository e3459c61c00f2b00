"""``daxsim kernel``: real Linux kernels under QEMU (fetch, list, run, compare).

::

    daxsim kernel run SCRIPT.xfsio ... (--kernel NAME | --vmlinuz P --modules D) [--json OUT]
    daxsim kernel compare SCRIPT.xfsio ... [--kernels 6.1,6.12,7.3] [--out DIR] [--json OUT]

``run`` boots the kernel once for all the scripts and evaluates every check of each on the
host: exit 0 when every check holds, 1 when one fails or the guest hangs (it is killed after
the timeout), 2 for bad input (a malformed script is refused before anything boots).
``compare`` runs each script on each kernel and in daxsim under that kernel's design, writes
``compare.parquet`` and prints the disagreements: exit 0 when everything agrees, 1 when
something does not, 2 for bad input.

Each action is a pair ``(configure(parser), main(args) -> int)`` in :data:`ACTIONS`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sim.commands._common import add_overwrite_arg, check_out_dir, default_out_dir, parse_list
from sim.errors import InputError

__all__ = ["configure", "main", "ACTIONS", "add_kernel_args", "kernel_from_args"]

#: Kernels ``compare`` uses when --kernels is not given.
DEFAULT_COMPARE_KERNELS = "6.1,6.12,7.3"


def add_kernel_args(parser: argparse.ArgumentParser) -> None:
    """``--kernel NAME | --vmlinuz PATH --modules DIR``."""
    parser.add_argument(
        "--kernel", metavar="NAME", help="a fetched kernel: series (6.1), version or release"
    )
    parser.add_argument("--vmlinuz", metavar="PATH", help="your own kernel image (bzImage)")
    parser.add_argument(
        "--modules",
        metavar="DIR",
        help="its modules: the INSTALL_MOD_PATH of make modules_install (with --vmlinuz)",
    )


def kernel_from_args(args: argparse.Namespace):
    """The :class:`~sim.kernel.cache.KernelInfo` that ``--kernel`` or ``--vmlinuz/--modules``
    name."""
    from sim.kernel.cache import load_kernel, local_kernel

    if args.vmlinuz or args.modules:
        if args.kernel:
            raise InputError("give either --kernel or --vmlinuz/--modules, not both")
        if not (args.vmlinuz and args.modules):
            raise InputError("--vmlinuz and --modules go together")
        return local_kernel(Path(args.vmlinuz), Path(args.modules))
    if not args.kernel:
        raise InputError("no kernel: give --kernel NAME or --vmlinuz PATH --modules DIR")
    return load_kernel(args.kernel)


def _configure_fetch(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME", help="series (6.1), version or release")
    p.add_argument("--all", action="store_true", help="the default set: 6.1, 6.12, 6.18 and 7.3")
    p.add_argument(
        "--no-source",
        action="store_true",
        help="skip the kernel source files (fs/dax.c, ...) that name a WARN's function",
    )


def _main_fetch(args: argparse.Namespace) -> int:
    from sim.kernel.fetch import (
        DEFAULT_SERIES,
        check_apt,
        fetch_kernel,
        fetch_source,
        update_index,
    )

    names = list(args.names)
    if args.all:
        names += [n for n in DEFAULT_SERIES if n not in names]
    if not names:
        raise InputError("name the kernels to fetch (e.g. 6.1 7.3), or --all")
    check_apt()
    update_index()

    def log(s: str) -> None:
        print(s, file=sys.stderr)

    for name in names:
        info = fetch_kernel(name, update=False, log=log)
        if not args.no_source:
            fetch_source(info, log=log)
    return 0


def _configure_list(p: argparse.ArgumentParser) -> None:
    add_kernel_args(p)


def _main_list(args: argparse.Namespace) -> int:
    from sim.kernel.cache import cached_kernels, describe_kernel, kernels_dir

    if args.vmlinuz or args.modules:
        kernels = [kernel_from_args(args)]
    else:
        kernels = cached_kernels()
    if not kernels:
        print(f"no kernels in {kernels_dir()}; `daxsim kernel fetch --all` gets them")
        return 0
    rows = [("name", "release", "version", "design", "derived from")]
    for k in kernels:
        meta = k.work_dir / "kernel.json"
        if k.name != "local" and meta.is_file():
            evidence = json.loads(meta.read_text()).get("design_evidence", "")
        else:
            evidence = describe_kernel(k.vmlinuz, k.system_map)[3]
        rows.append((k.name, k.release, k.version, k.design, evidence))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    return 0


#: Keys of ``kernel run --json``: an existing file is replaced only if it has them.
RUN_JSON_KEYS = ("kernel", "design", "timed_out", "scripts")


def _check_json_out(path: str | None, overwrite: bool, *keys: str) -> None:
    """Refuse a --json file daxsim may not write (a directory, a file it did not write)."""
    if path is None:
        return
    from sim.results.outputs import check_out_file, json_with_keys

    check_out_file(path, "--json", overwrite=overwrite, ours=json_with_keys(*keys))


def _write_json(path: str, data: dict) -> None:
    from sim.results.outputs import output_file

    text = (json.dumps(data, indent=2) + "\n").encode()
    output_file(path, lambda fh: fh.write(text))


def _describe_script(s) -> list[str]:
    c = s.counts()
    warn = ", ".join(
        f"{w['file']}:{w['line']} {w.get('function') or '?'}"
        + (f" [{w['site']}]" if w.get("site") else "")
        for w in s.warnings
    )
    f = s.faults
    lines = [
        f"{s.script}: {c['checks_passed']} passed, {c['checks_failed']} failed"
        + (
            f" (model-derived: {c['model_checks_passed']} agree, {c['model_checks_failed']} differ)"
            if c["model_checks_passed"] or c["model_checks_failed"]
            else ""
        )
        + f"; faults pte={f.get('pte', '?')} pmd={f.get('pmd', '?')}"
        f" pmd_fallback={f.get('pmd_fallback', '?')}; sigbus {'yes' if s.sigbus else 'no'}",
        f"  warnings: {warn or 'none'}",
    ]
    if s.error:
        lines.append(f"  not completed: {s.error}")
    if s.lost_trace_events:
        lines.append(f"  {s.lost_trace_events} trace events lost: the fault counts are short")
    lines += [f"  {k.describe(s.script)}" for k in s.checks if not k.ok and not k.model]
    return lines


# ---------------------------------------------------------------------- run
def _configure_run(p) -> None:
    p.add_argument("scripts", nargs="+", metavar="SCRIPT", help="conformance-format scripts")
    add_kernel_args(p)
    p.add_argument("--json", default=None, metavar="OUT", help="write the results as JSON")
    add_overwrite_arg(p, "an earlier --json file")
    p.add_argument(
        "--timeout", type=float, default=None, metavar="S", help="kill the guest after S seconds"
    )
    p.add_argument(
        "--script-timeout",
        type=float,
        default=None,
        metavar="S",
        help="kill the guest when one script runs longer than S seconds (default 600)",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


def _main_run(args) -> int:
    from sim.kernel.run import prepare_scripts, run_scripts

    _check_json_out(args.json, args.overwrite, *RUN_JSON_KEYS)
    prepare_scripts(args.scripts)  # bad input: exit 2 before the kernel is even looked up
    kernel = kernel_from_args(args)
    kr = run_scripts(
        kernel, args.scripts, timeout_s=args.timeout, script_timeout_s=args.script_timeout
    )
    if args.json:
        _write_json(args.json, kr.to_json())
    if not args.quiet:
        print(f"kernel {kernel.name} ({kernel.version}, {kernel.release}), design {kernel.design}")
        for s in kr.scripts:
            print("\n".join(_describe_script(s)))
        if kr.timed_out:
            print("the guest timed out and was killed")
    return 0 if kr.ok else 1


# ---------------------------------------------------------------------- compare
def _configure_compare(p) -> None:
    p.add_argument("scripts", nargs="+", metavar="SCRIPT", help="conformance-format scripts")
    p.add_argument(
        "--kernels",
        default=DEFAULT_COMPARE_KERNELS,
        metavar="A,B",
        help=f"cached kernels (default {DEFAULT_COMPARE_KERNELS})",
    )
    p.add_argument("--out", default=None, metavar="DIR", help="where compare.parquet goes")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the rows as JSON")
    add_overwrite_arg(p, "an earlier kernel compare output at --out (and --json)")
    p.add_argument(
        "--timeout", type=float, default=None, metavar="S", help="kill a guest after S seconds"
    )
    p.add_argument(
        "--script-timeout",
        type=float,
        default=None,
        metavar="S",
        help="kill a guest when one script runs longer than S seconds (default 600)",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


def _write_text(path: Path, text: str) -> None:
    from sim.results.outputs import output_file

    data = text.encode()
    output_file(path, lambda fh: fh.write(data))


def _write_parquet(rows: list[dict], out_dir: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sim.kernel.compare import COLUMNS
    from sim.results.outputs import output_file

    cols = {c: [r[c] for r in rows] for c in COLUMNS}
    schema = pa.schema([(c, pa.bool_() if c == "agree" else pa.string()) for c in COLUMNS])
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(cols, schema=schema), sink)
    data = sink.getvalue().to_pybytes()
    output_file(out_dir / "compare.parquet", lambda fh: fh.write(data))
    return out_dir / "compare.parquet"


def _main_compare(args) -> int:
    from sim.kernel.btf import BtfError
    from sim.kernel.cache import load_kernel
    from sim.kernel.compare import agreement_table, compare_rows, run_daxsim
    from sim.kernel.pagestate import PageCapture
    from sim.kernel.run import prepare_scripts, run_scripts
    from sim.runner import check_variant

    _check_json_out(args.json, args.overwrite, "rows")
    prepared = prepare_scripts(args.scripts)
    names = parse_list(args.kernels)
    if not names:
        raise InputError("--kernels: no kernel named")
    out_dir = Path(args.out) if args.out else default_out_dir("kernel", "compare")
    check_out_dir(out_dir, "--out", kind="kernel-compare", overwrite=args.overwrite)
    kernels = [load_kernel(n) for n in names]
    for k in kernels:
        check_variant(k.design)
    # daxsim first: a line it cannot run (an invariant it does not know...) stops the command
    # here, before any kernel boots
    sims = {
        (p, d): run_daxsim(cmds, p, d)
        for d in dict.fromkeys(k.design for k in kernels)
        for p, _n, cmds, _prog in prepared
    }
    runs = []
    for k in kernels:
        if not args.quiet:
            print(f"kernel {k.name} ({k.version}): {len(prepared)} script(s)...", file=sys.stderr)
        try:  # struct pages read before each unmount, with the offsets of the kernel's BTF
            capture = PageCapture.for_kernel(k)
        except (BtfError, InputError) as exc:
            capture = None
            print(f"kernel {k.name}: no page state ({exc})", file=sys.stderr)
        runs.append(
            run_scripts(
                k,
                args.scripts,
                pause=capture,
                timeout_s=args.timeout,
                script_timeout_s=args.script_timeout,
            )
        )
        runs[-1].capture = capture
    parsed = {p: cmds for p, _n, cmds, _prog in prepared}
    rows = compare_rows(runs, parsed, sims)
    from sim.results.outputs import output_dir

    with output_dir(out_dir, kind="kernel-compare", overwrite=args.overwrite) as tmp:
        _write_parquet(rows, tmp)
        _write_text(tmp / "agreement.md", agreement_table(rows))
    path = out_dir / "compare.parquet"
    if args.json:
        _write_json(args.json, {"rows": rows})
    bad = [r for r in rows if not r["agree"]]
    if not args.quiet:
        for r in bad:
            print(
                f"{r['script']} on {r['kernel']} ({r['design']}): {r['observation']}: "
                f"kernel {r['kernel_value']}, daxsim {r['daxsim_value']}"
            )
        print(
            f"{len(rows) - len(bad)} of {len(rows)} observations agree; wrote {path} and "
            f"{out_dir / 'agreement.md'}"
        )
    return 1 if bad or any(kr.timed_out for kr in runs) else 0


#: action -> (configure, main, help)
ACTIONS = {
    "fetch": (_configure_fetch, _main_fetch, "fetch Debian kernels into the cache (apt)"),
    "list": (_configure_list, _main_list, "the cached kernels, their release and design"),
    "run": (_configure_run, _main_run, "run xfs_io scripts on one kernel and check them"),
    "compare": (
        _configure_compare,
        _main_compare,
        "scripts on kernels and in daxsim under each kernel's design: compare.parquet",
    ),
}


def configure(parser: argparse.ArgumentParser) -> None:
    """One sub-parser per action of :data:`ACTIONS`."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", title="actions")
    for name, (conf, _main, help_text) in ACTIONS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        conf(p)


def main(args: argparse.Namespace) -> int:
    """Run the chosen action."""
    if not getattr(args, "action", None):
        raise InputError("expected an action: " + ", ".join(ACTIONS))
    return ACTIONS[args.action][1](args)
