"""The ``daxsim`` command line: argparse with one module per subcommand.

Each subcommand lives in ``sim/commands/<module>.py`` and provides two functions:
``configure(parser)`` adds its arguments, ``main(args) -> int`` runs it and returns the exit
status. Modules are imported lazily, so ``daxsim --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import importlib.util
import os
import signal
import sys
import threading

from sim.errors import InputError

__all__ = ["main", "COMMANDS", "Terminated"]


#: Errors of writing an output (a full disk, a quota, a file size limit, a read-only
#: filesystem): reported as a clean error, exit 2, after the half-written output was removed.
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like SIGINT: what is half-written is removed on the way out."""


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Turn SIGTERM into :class:`Terminated` in this process (not in forked workers, which
    keep the default action and die) for the duration of the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()

    def handler(signum, frame):
        if os.getpid() != owner:  # a forked worker: die as it would have
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


#: (subcommand, module under sim.commands, one-line help), in the order --help lists them.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("run", "run", "run a scenario and write a results directory"),
    ("compare", "compare", "run one operation stream under several design variants and compare"),
    ("sweep", "sweep", "run a grid of scenarios on this machine or a dask cluster"),
    ("plot", "plot", "regenerate the plots of a results or sweep directory"),
    ("xfsio", "xfsio", "run an xfs_io script (xfstests format) on the simulated fsdax filesystem"),
    ("pagestate", "pagestate", "replay a page-level associate/disassociate CSV trace"),
    ("hunt", "hunt", "search for design defects and shrink each to an xfs_io reproducer"),
    ("microbench", "microbench", "LATTester-style memory microbenchmark on a modelled device"),
    ("kernel", "kernel", "real Linux kernels under QEMU: fetch, list, run scripts on them"),
    ("variants", "variants", "list the design variants (kernel generations and their releases)"),
    ("profiles", "profiles", "list the hardware profiles"),
    ("show-config", "show_config", "print a resolved scenario or profile with every default"),
)


def _available() -> list[tuple[str, str, str]]:
    return [c for c in COMMANDS if importlib.util.find_spec(f"sim.commands.{c[1]}") is not None]


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="daxsim",
        description="Cycle-level simulator of Linux fsdax on pmem with reflinked files.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, module, help_text in _available():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        p.set_defaults(_configure_pending=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``daxsim`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Configure only the chosen subcommand (lazy import keeps --help fast).
    known = {c[0]: c[1] for c in _available()}
    if argv and argv[0] in known:
        mod = importlib.import_module(f"sim.commands.{known[argv[0]]}")
        sub = parser._subparsers._group_actions[0].choices[argv[0]]  # noqa: SLF001
        mod.configure(sub)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    mod = importlib.import_module(f"sim.commands.{args._module}")
    try:
        with _sigterm_as_interrupt():
            return int(mod.main(args) or 0)
    except InputError as exc:
        print(f"daxsim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in _OUTPUT_ERRNOS:
            raise
        print(
            f"daxsim {args.command}: error: cannot write the output: "
            f"{exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}; "
            "nothing half-written was left",
            file=sys.stderr,
        )
        return 2
    except Terminated:
        print("daxsim: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("daxsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `daxsim ... | head`: the reader went away; not an error of ours
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
