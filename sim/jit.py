"""The project's ``njit``: numba's, compiled once per argument *type*, not per constant.

numba specialises a compiled function called from compiled code on the literal value of
every constant argument: ``_rows(st, s, 0, n, True)`` and ``_rows(st, s, 0, n, False)`` are
two more compilations of ``_rows`` (and of every callee the constants flow into) beside the
one for plain ``int64`` and ``bool``. In the compiled twins that made about a third of all
compilations. :func:`njit` makes a dispatcher that types every call on the arguments' plain
types (``types.unliteral``), so each function compiles once per type signature; LLVM still
propagates the constants where it inlines the callee.

The on-disk cache is numba's, with one difference: a cached function is valid only for the
sources of its whole top-level package (:func:`package_stamp`), not just its own file.
numba keys an entry on the hash of the function's file, but a compiled function freezes the
globals it reads (constants, other compiled functions inlined into it) from other modules:
after an edit to ``sim/memmap/layout.py`` (a warning site's number) numba would load
``sim/memmap/kernels.py``'s compiled code with the old number. Any change to the package's
sources now recompiles, which is what an upgrade or a ``git pull`` needs. (The few kernels
compiled with :func:`numba.njit` itself, in ``sim/timing/media.py``, ``sim/timing/cache.py``
and ``sim/hunt/rng.py``, read no globals of other modules but ``sim.prefetch``'s intrinsics,
and keep numba's stamp of their own file.)

Everything else is numba's :func:`numba.njit` (same options).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import sys
import tempfile
import time

from numba.core import caching, config, event, types
from numba.core.registry import CPUDispatcher

__all__ = ["njit", "PlainArgsDispatcher", "compile_notice", "compile_targets", "package_stamp"]

#: In a helper process: the directory where it marks the functions it is compiling.
_MARKS_ENV = "DAXSIM_COMPILE_MARKS"
#: ``(process, marks directory)`` of the helpers running for this process (at most one).
_HELPERS: list = []


def _package_dir(py_file: str) -> str:
    """The directory of the top-level package that holds ``py_file`` (the highest directory
    above it with an ``__init__.py``), or the file's own directory for a lone module."""
    d = os.path.dirname(os.path.abspath(py_file))
    top = d
    while os.path.isfile(os.path.join(d, "__init__.py")):
        top = d
        d = os.path.dirname(d)
    return top


def package_stamp(py_file: str) -> str:
    """A digest of every ``.py`` source of the top-level package that holds ``py_file``.

    Parameters
    ----------
    py_file : str
        A module's source file.

    Returns
    -------
    str
        The sha256 of the package's sources (their paths relative to the package and their
        contents), read once per process: the sources the process imported, which its
        compiled code comes from.
    """
    return _hash_package(_package_dir(py_file))


@functools.cache
def _hash_package(top: str) -> str:
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                h.update(os.path.relpath(path, top).encode() + b"\0")
                with open(path, "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


class _PackageStampMixin:
    """A numba cache locator whose source stamp is the file's and its package's sources'."""

    def get_source_stamp(self):
        return (super().get_source_stamp(), package_stamp(self._py_file))


class _InTree(_PackageStampMixin, caching.InTreeCacheLocator):
    pass


class _UserProvided(_PackageStampMixin, caching.UserProvidedCacheLocator):
    pass


class _UserWide(_PackageStampMixin, caching.UserWideCacheLocator):
    pass


class _PackageCacheImpl(caching.CompileResultCacheImpl):
    """numba's cache of compile results, placed by locators that stamp the whole package."""

    _locator_classes = [_UserProvided, _InTree, _UserWide]


class _PackageFunctionCache(caching.FunctionCache):
    """numba's function cache with :class:`_PackageCacheImpl`."""

    _impl_class = _PackageCacheImpl


class PlainArgsDispatcher(CPUDispatcher):
    """A CPU dispatcher that types calls from compiled code on unliteral argument types."""

    def get_call_template(self, args, kws):
        """numba's call template for the plain types of ``args`` and ``kws``."""
        args = tuple(types.unliteral(a) for a in args)
        kws = {k: types.unliteral(v) for k, v in kws.items()}
        return super().get_call_template(args, kws)

    def compile(self, sig):
        """numba's compile of ``sig``, coordinated with a helper process (see
        :func:`compile_notice`): the helper marks the functions it is compiling, and this
        process waits for such a function to reach the on-disk cache rather than compile it
        a second time."""
        if isinstance(sig, tuple) and sig in self.overloads:
            return super().compile(sig)
        name = f"{self.py_func.__module__}.{self.py_func.__qualname__}"
        marks = os.environ.get(_MARKS_ENV)
        if marks:  # this is the helper: mark what it compiles
            mark = os.path.join(marks, name)
            open(mark, "w").close()  # noqa: SIM115 - an empty marker
            try:
                return super().compile(sig)
            finally:
                os.unlink(mark)
        for proc, marks in _HELPERS:  # a helper compiles it now: wait for it
            mark = os.path.join(marks, name)
            while os.path.exists(mark) and proc.poll() is None:
                time.sleep(0.02)
        return super().compile(sig)

    def enable_caching(self):
        """numba's on-disk cache, valid for the sources of the function's whole package."""
        self._cache = _PackageFunctionCache(self.py_func)


def njit(func=None, *, cache: bool = False, **options):
    """:func:`numba.njit` (no eager signatures) with a :class:`PlainArgsDispatcher`.

    Parameters
    ----------
    func : function, optional
        The function (``@njit``); omitted for ``@njit(cache=True, ...)``.
    cache : bool
        Keep the compiled code in numba's on-disk cache.
    **options
        numba's target options (``inline``, ``nogil``, ``_nrt``, ``forceinline``, ...).

    Returns
    -------
    PlainArgsDispatcher or callable
        The dispatcher, or a decorator making one.
    """
    targetoptions = {**options, "nopython": True}
    targetoptions.setdefault("boundscheck", None)

    def wrap(f):
        if config.DISABLE_JIT:
            return f
        disp = PlainArgsDispatcher(py_func=f, locals={}, targetoptions=targetoptions)
        if cache:
            disp.enable_caching()
        return disp

    return wrap if func is None else wrap(func)


class _FirstCompile(event.Listener):
    """At the first ``numba:compile`` event (a cache miss): one line, and the helper process."""

    def __init__(self, what: str, stream, helper: str | None):
        self.what = what
        self.stream = stream
        self.helper = helper
        self.proc = None
        self.t0_s = None
        self.depth = 0
        self.since_s = 0.0
        #: Wall seconds spent compiling so far in the block (outermost compilations).
        self.seconds = 0.0

    def on_start(self, ev):
        """A compilation starts: the first one of a function numba keeps on disk is
        announced (and starts the helper)."""
        self.depth += 1
        if self.depth == 1:
            self.since_s = time.perf_counter()
        disp = ev.data.get("dispatcher") if isinstance(ev.data, dict) else None
        if self.t0_s is not None or getattr(disp, "stats", None) is None:
            return
        if disp.stats.cache_path is None:  # not kept on disk (compiled in every process)
            return
        self.t0_s = self.since_s
        print(
            f"{self.what}: compiling with numba (first use only; later runs load it "
            "from numba's on-disk cache) ...",
            file=self.stream,
            flush=True,
        )
        if self.helper is not None:
            self.proc = _start_helper(self.helper)

    def on_end(self, ev):
        """A compilation ends."""
        self.depth -= 1
        if self.depth == 0:
            self.seconds += time.perf_counter() - self.since_s


@contextlib.contextmanager
def compile_notice(what: str, stream=None, helper: str | None = None):
    """Say on ``stream`` when numba compiles inside the block, and how long it took; nothing
    when everything the block needs loads from numba's on-disk cache.

    Parameters
    ----------
    what : str
        The command and what it compiles, the start of the message
        (``"daxsim hunt: the episode engine"``).
    stream : file, optional
        Where the lines go (default ``sys.stderr``).
    helper : str, optional
        ``"module:function"``: when the block compiles, a second process (the machine's other
        core) compiles the ``(dispatcher, example arguments)`` pairs this function returns
        into the on-disk cache meanwhile, in their order, and this process loads each one it
        reaches after the helper saved it. List them in the reverse of the order in which
        the block's compilation reaches them, so that the two processes meet in the middle.
        The helper is stopped at the end of the block. The environment variable
        ``DAXSIM_NO_COMPILE_HELPER=1`` turns it off (``benchmarks/bench_compile.py
        --no-helper``).

    Yields
    ------
    object
        Its ``seconds`` attribute is the wall time spent compiling in the block so far
        (to take out of a measured throughput).
    """
    lis = _FirstCompile(what, sys.stderr if stream is None else stream, helper)
    event.register("numba:compile", lis)
    try:
        yield lis
    finally:
        event.unregister("numba:compile", lis)
        if lis.proc is not None:
            lis.proc.terminate()
            lis.proc.wait()
            for h in [h for h in _HELPERS if h[0] is lis.proc]:
                _HELPERS.remove(h)
                shutil.rmtree(h[1], ignore_errors=True)
        if lis.t0_s is not None:
            print(
                f"{what}: compiled in {time.perf_counter() - lis.t0_s:.0f} s",
                file=lis.stream,
                flush=True,
            )


def _start_helper(targets: str):
    """A process compiling ``targets`` (see :func:`compile_notice`), or None where this
    process may not have one (a daemonic worker, a single core, no process to spare). The
    helper is an optimisation only: it never makes the compilation fail."""
    import json
    import multiprocessing as mp
    import subprocess

    if (
        mp.current_process().daemon
        or (os.cpu_count() or 1) < 2
        or os.environ.get("DAXSIM_NO_COMPILE_HELPER")
    ):
        return None
    code = (
        "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
        "from sim.jit import compile_targets; compile_targets(sys.argv[2])"
    )
    marks = tempfile.mkdtemp(prefix="daxsim-compiling-")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, json.dumps(sys.path), targets],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, _MARKS_ENV: marks},
        )
    except OSError:
        shutil.rmtree(marks, ignore_errors=True)
        return None
    _HELPERS.append((proc, marks))
    return proc


def compile_targets(targets: str) -> int:
    """Compile (or load from the cache) each ``(dispatcher, example arguments)`` pair that
    the function ``targets`` (``"module:function"``) returns, for the arguments' numba types.

    Parameters
    ----------
    targets : str
        ``"module:function"``; the function takes no argument.

    Returns
    -------
    int
        The number of pairs.
    """
    from importlib import import_module

    from numba import typeof

    parent = os.getppid()
    mod, name = targets.split(":")
    pairs = getattr(import_module(mod), name)()
    for disp, args in pairs:
        if os.getppid() != parent:  # the compiling process is gone: so is the point
            break
        disp.compile(tuple(typeof(a) for a in args))
    return len(pairs)
