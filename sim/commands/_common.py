"""Helpers shared by the scenario-running subcommands."""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from sim.errors import InputError

__all__ = [
    "add_scenario_args",
    "add_overwrite_arg",
    "default_out_dir",
    "show_progress",
    "parse_list",
    "check_out_path",
    "check_out_dir",
    "report_failed_ops",
]


def add_scenario_args(parser) -> None:
    """``[SCENARIO] [--set k=v ...] [--out DIR] [--quiet]``."""
    parser.add_argument(
        "scenario",
        nargs="?",
        default=None,
        help="scenario TOML file or name under scenarios/ (default: the default scenario)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a scenario key (repeatable), checked like the file",
    )
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="results directory (default results/<scenario>-<UTC time>)",
    )
    add_overwrite_arg(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no table")


def add_overwrite_arg(parser, what: str = "an earlier daxsim output at --out") -> None:
    """``--overwrite``: replace ``what`` (only the files daxsim wrote there)."""
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace {what} (only the files daxsim wrote; anything else is refused)",
    )


def default_out_dir(name: str, kind: str = "") -> Path:
    """``results/<name>[-kind]-<UTC timestamp>``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("results") / f"{name}{'-' + kind if kind else ''}-{stamp}"


def show_progress(quiet: bool) -> bool:
    """Progress bars only on a terminal and without --quiet."""
    return not quiet and sys.stderr.isatty()


def parse_list(text: str | None) -> list[str]:
    """``"a,b, c"`` -> ``["a", "b", "c"]``."""
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def check_out_dir(path, where: str, *, kind: str, overwrite: bool) -> None:
    """:func:`check_out_path`, then refuse a directory daxsim may not write into
    (:func:`sim.results.outputs.check_out_dir`: user files, or an earlier output without
    ``--overwrite``)."""
    from sim.results.outputs import check_out_dir as _check

    check_out_path(path, where)
    _check(path, where, kind=kind, overwrite=overwrite)


def check_out_path(path, where: str) -> None:
    """Fail early (InputError naming ``where``) when ``path``, a results directory still to
    be written (or to write into), cannot be: it or its nearest existing ancestor is not a
    directory,
    or a probe directory cannot be made there (a read-only or pseudo filesystem, a missing
    permission: root passes access checks that ``/proc`` still refuses). Creates nothing
    that stays."""
    p = Path(path).absolute()
    q = p
    while not q.exists():
        q = q.parent
    if not q.is_dir():
        raise InputError(f"cannot create {p}: {q} is not a directory", where=where)
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".probe.daxsim.tmp-0-0-", dir=q))
    except OSError as exc:
        raise InputError(f"cannot create {p}: {exc.strerror or exc} in {q}", where=where) from None


def report_failed_ops(command: str, scenario, outputs) -> int:
    """Warn on stderr about failed operations the scenario did not allow
    (``run.allow_errors``); return the exit status (1 after a warning, else 0)."""
    from sim.runner import error_report

    report = error_report(outputs)
    if report is None or scenario.run.allow_errors:
        return 0
    print(
        f"daxsim {command}: warning: operations failed; these results describe a run that "
        f"went wrong (set run.allow_errors = true if the workload means them to fail):\n"
        f"{report}",
        file=sys.stderr,
    )
    return 1
