"""The random stream of one hunt episode, seeded without numpy's SeedSequence machinery.

Episode ``e`` of a hunt with seed ``s`` draws from
``np.random.default_rng(np.random.SeedSequence(s, spawn_key=(e,)))``. Building that costs
~35 µs in a tight loop and ~140 µs between two episodes (the SeedSequence hashing runs under
``np.errstate`` and allocates several arrays; PCG64 seeding makes a second SeedSequence), about
5% of a search. :class:`EpisodeStreams` computes the same PCG64 state: the SeedSequence
hashing (``bit_generator.pyx``: ``_int_to_uint32_array``, ``get_assembled_entropy``,
``mix_entropy``, ``generate_state``) as a small compiled kernel, the PCG64 seeding
(``pcg64_set_seed`` → ``pcg_setseq_128_srandom_r``) in Python integers, and installs it in one
reused :class:`numpy.random.PCG64` through its ``state`` property. The stream is the same bit
for bit; the tests compare both for many seeds and episode numbers.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["EpisodeStreams", "episode_state"]

_M32 = 0xFFFFFFFF
_M128 = (1 << 128) - 1
_POOL = 4
_PCG_MULT = 0x2360ED051FC65DA44385DF649FCCF645


_M32_U = np.uint64(0xFFFFFFFF)
_SH = np.uint64(16)


@numba.njit(cache=True, nogil=True)
def _hashmix(v, h):  # pragma: no cover - compiled
    """``hashmix``: ``(hashed value, next hash constant)`` (uint32 values in uint64)."""
    v ^= h
    h = (h * np.uint64(0x931E8875)) & _M32_U
    v = (v * h) & _M32_U
    return v ^ (v >> _SH), h


@numba.njit(cache=True, nogil=True)
def _mix(x, y):  # pragma: no cover - compiled
    r = (np.uint64(0xCA01F9DD) * x - np.uint64(0x4973F715) * y) & _M32_U
    return r ^ (r >> _SH)


@numba.njit(cache=True, nogil=True)
def _state_words(ent):  # pragma: no cover - compiled
    """``SeedSequence(entropy).generate_state(8, uint32)`` for the assembled entropy words
    ``ent`` (uint64 array holding uint32 values; arithmetic mod 2**32)."""
    h = np.uint64(0x43B0D7E5)
    n = ent.shape[0]
    pool = np.zeros(4, np.uint64)
    for i in range(4):  # mix_entropy
        pool[i], h = _hashmix(ent[i] if i < n else np.uint64(0), h)
    for i_src in range(4):
        for i_dst in range(4):
            if i_src != i_dst:
                v, h = _hashmix(pool[i_src], h)
                pool[i_dst] = _mix(pool[i_dst], v)
    for i_src in range(4, n):
        for i_dst in range(4):
            v, h = _hashmix(ent[i_src], h)
            pool[i_dst] = _mix(pool[i_dst], v)
    out = np.zeros(8, np.uint64)
    hb = np.uint64(0x8B51F9DD)
    for i in range(8):  # generate_state
        v = pool[i % 4] ^ hb
        hb = (hb * np.uint64(0x58F38DED)) & _M32_U
        v = (v * hb) & _M32_U
        out[i] = v ^ (v >> _SH)
    return out


def _words(n: int) -> list[int]:
    """``_int_to_uint32_array``: little-endian 32-bit words of a non-negative int."""
    if n < 0:
        raise ValueError("expected a non-negative integer")
    out = []
    while True:
        out.append(n & _M32)
        n >>= 32
        if n == 0:
            return out


def episode_state(seed: int, episode: int) -> dict:
    """The ``PCG64.state`` dict of ``PCG64(SeedSequence(seed, spawn_key=(episode,)))``."""
    run = _words(int(seed))
    spawn = _words(int(episode))
    if len(run) < _POOL:  # a spawn key is given: the entropy is padded to the pool size
        run = run + [0] * (_POOL - len(run))
    w = _state_words(np.array(run + spawn, dtype=np.uint64)).tolist()
    initstate = ((w[0] | (w[1] << 32)) << 64) | (w[2] | (w[3] << 32))
    initseq = ((w[4] | (w[5] << 32)) << 64) | (w[6] | (w[7] << 32))
    inc = ((initseq << 1) | 1) & _M128
    state = (((inc + initstate) & _M128) * _PCG_MULT + inc) & _M128  # two LCG steps from 0
    return {
        "bit_generator": "PCG64",
        "state": {"state": state, "inc": inc},
        "has_uint32": 0,
        "uinteger": 0,
    }


class EpisodeStreams:
    """Generators of the episodes of one hunt, on one reused PCG64.

    ``streams.generator(e)`` is ``np.random.default_rng(np.random.SeedSequence(seed,
    spawn_key=(e,)))`` (the same stream); it shares this object's bit generator, so the
    generator of the previous episode must no longer be used (the search runs one episode
    at a time per process).
    """

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._bg = np.random.PCG64(0)

    def generator(self, episode: int) -> np.random.Generator:
        """The generator of episode ``episode`` (independent of the order episodes run in)."""
        self._bg.state = episode_state(self.seed, episode)
        return np.random.Generator(self._bg)
