"""The hunt's episode streams equal numpy's ``default_rng(SeedSequence(seed, spawn_key=(e,)))``
bit for bit (the search's results are defined by that stream)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.hunt.rng import EpisodeStreams, episode_state

_BIG = st.one_of(st.integers(0, 2**32 + 5), st.integers(0, 2**140))


@settings(max_examples=300, deadline=None)
@given(seed=_BIG, episode=_BIG)
def test_episode_state_is_the_seedsequence_state(seed, episode):
    ref = np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(episode,))).state
    assert episode_state(seed, episode) == ref


def test_streams_reuse_one_bit_generator_and_give_the_same_draws():
    streams = EpisodeStreams(7)
    for e in (0, 1, 2, 1, 10**9):
        got = streams.generator(e).random(300)
        want = np.random.default_rng(np.random.SeedSequence(7, spawn_key=(e,))).random(300)
        assert np.array_equal(got, want)
    # a different seed is a different stream
    assert not np.array_equal(
        EpisodeStreams(8).generator(0).random(8), EpisodeStreams(7).generator(0).random(8)
    )
