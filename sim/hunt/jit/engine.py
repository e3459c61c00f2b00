"""The compiled episode engine as the search uses it: states made once per process, one
call per episode.

:class:`CompiledEpisodes` answers, for episode ``e`` of a hunt, whether it is clean (then
the search takes its op count and moves on) or must be run on the Python stack (a possible
violation, or an overflow of the engine's capacities). See :mod:`sim.hunt.jit.episode` for
the contract and :func:`sim.hunt.search._run_episode` for its use.
"""

from __future__ import annotations

import numpy as np

from sim.dax.compiled import (
    DESIGNS,
    PMD_NR,
    dax_clone,
    dax_dedupe,
    dax_memory_failure,
    dax_mread,
    dax_mwrite,
    dax_new,
    dax_punch,
    dax_pwrite,
    dax_truncate,
    dax_unshare,
    dax_zero_range,
)
from sim.fs.compiled import fs_new
from sim.fs.compiled_content import content_new
from sim.hunt.jit import episode as _episode
from sim.hunt.jit.episode import NAME_BITS, run_episode
from sim.hunt.jit.generate import MAX_DRAWS, kind_arrays
from sim.memmap.layout import SITES
from sim.memmap.variants import get_variant

__all__ = ["CompiledEpisodes", "engine_for"]

#: Uniform draws made per episode and random op (an op takes at most 13, ``MAX_DRAWS`` is
#: 16; an episode that would need more falls back to the Python stack).
DRAWS_PER_OP = MAX_DRAWS
#: Largest device and file count the engine takes.
MAX_NBLOCKS = 1 << 16
MAX_FILES = 16


def engine_for(variant, nblocks: int, nfiles: int):
    """The design code of ``variant`` when the compiled engine can run its episodes (a
    built-in design by name or alias, a small device, few files), else None."""
    try:
        v = get_variant(variant)
    except Exception:  # noqa: BLE001 - the Python path reports it
        return None
    name = getattr(v, "name", None)
    if name not in DESIGNS:
        return None
    try:
        builtin = get_variant(name)
    except Exception:  # noqa: BLE001
        return None
    if type(v) is not type(builtin):  # a user's subclass of a built-in design
        return None
    if not 0 < int(nblocks) <= MAX_NBLOCKS or not 0 < int(nfiles) <= MAX_FILES:
        return None
    return DESIGNS.index(name)


def compile_helper_targets():
    """``(dispatcher, example arguments)`` of the engine's larger callees, in the reverse
    of the order in which compiling :func:`run_episode` reaches them: the second process of
    :func:`sim.jit.compile_notice` compiles them while this one compiles from the top. The
    arguments have the types :func:`~sim.hunt.jit.episode._apply` and
    :func:`~sim.hunt.jit.episode.run_episode` pass (int64 scalars, a bool where a
    comparison is passed, the states and their scratch arrays)."""
    e = CompiledEpisodes(0, PMD_NR, 1, ("pwrite",), 1)
    fs, dst, cm = e.fs, e.dax, e.cm
    buf, res, rng = dst.ibuf, dst.res, dst.rng
    return [
        (_episode._check_op, (fs, dst, cm, 1, 0, e.wsites, 0, 0, False, rng)),
        (dax_unshare, (dst, fs, 0, 0, 0, buf)),
        (dax_zero_range, (dst, fs, 0, 0, 0, False, buf)),
        (dax_punch, (dst, fs, 0, 0, 0, buf)),
        (dax_truncate, (dst, fs, 0, 0, buf)),
        (dax_pwrite, (dst, fs, 0, 0, 0, 0, buf)),
        (dax_dedupe, (dst, fs, 0, 0, 0, 0, 0, buf)),
        (dax_clone, (dst, fs, 0, 0, 0, 0, 0, buf)),
        (dax_memory_failure, (dst, fs, 0, 0, 0, res)),
        (dax_mwrite, (dst, fs, 0, 0, 0, 0, res)),
        (dax_mread, (dst, fs, 0, 0, 0, res)),
    ]


class CompiledEpisodes:
    """Compiled states for the episodes of one hunt (one per process).

    Parameters
    ----------
    design : int
        Code from :func:`engine_for`.
    nblocks, nfiles : int
    kinds : tuple of str
        Op kinds of the hunt.
    episode_len : int
    stripe_unit_blocks : int, optional
        The filesystem's stripe unit (``fs_new``; 0 = none, the hunt's model).
    """

    def __init__(
        self,
        design: int,
        nblocks: int,
        nfiles: int,
        kinds,
        episode_len: int,
        stripe_unit_blocks: int = 0,
    ):
        self.fs = fs_new(int(nblocks), int(nfiles), stripe_unit_blocks=int(stripe_unit_blocks))
        self.dax = dax_new(int(nblocks), int(nfiles), int(design))
        self.cm = content_new(int(nfiles))
        self.cw, self.kinds = kind_arrays(tuple(kinds))
        self.nfiles = int(nfiles)
        self.episode_len = int(episode_len)
        # every site, as MemMap.warning_total sums them: the fsdax layer counts some
        # (clear_inode_nrpages, ...) whatever sites the design lists
        self.wsites = np.arange(len(SITES), dtype=np.int64)
        self.out = np.zeros(8, dtype=np.int64)

    def warm(self) -> None:
        """Compile the engine, or load it from numba's on-disk cache (an empty episode)."""
        u = np.zeros(DRAWS_PER_OP * self.episode_len + 64)
        run_episode(
            self.fs,
            self.dax,
            self.cm,
            u,
            self.cw,
            self.kinds,
            self.nfiles,
            self.episode_len,
            0,
            0,
            self.wsites,
            self.out,
        )

    def run(self, rng: np.random.Generator, todo, max_ops: int | None) -> tuple[int, int]:
        """``(status, ops)`` of the episode drawing from ``rng`` (a fresh episode
        Generator), checking the invariant names ``todo``."""
        mask = 0
        for n in todo:
            mask |= 1 << NAME_BITS[n]
        u = rng.random(DRAWS_PER_OP * self.episode_len + 64)
        status, nops = run_episode(
            self.fs,
            self.dax,
            self.cm,
            u,
            self.cw,
            self.kinds,
            self.nfiles,
            self.episode_len,
            mask,
            -1 if max_ops is None else int(max_ops),
            self.wsites,
            self.out,
        )
        return int(status), int(nops)
