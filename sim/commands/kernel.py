"""``daxsim kernel``: real Linux kernels under QEMU (fetch, list, ...).

Each action is a pair ``(configure(parser), main(args) -> int)`` in :data:`ACTIONS`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sim.errors import InputError

__all__ = ["configure", "main", "ACTIONS", "add_kernel_args", "kernel_from_args"]


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


def _main_fetch(args: argparse.Namespace) -> int:
    from sim.kernel.fetch import DEFAULT_SERIES, check_apt, fetch_kernel, update_index

    names = list(args.names)
    if args.all:
        names += [n for n in DEFAULT_SERIES if n not in names]
    if not names:
        raise InputError("name the kernels to fetch (e.g. 6.1 7.3), or --all")
    check_apt()
    update_index()
    for name in names:
        fetch_kernel(name, update=False, log=lambda s: print(s, file=sys.stderr))
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


#: action -> (configure, main, help)
ACTIONS = {
    "fetch": (_configure_fetch, _main_fetch, "fetch Debian kernels into the cache (apt)"),
    "list": (_configure_list, _main_list, "the cached kernels, their release and design"),
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
