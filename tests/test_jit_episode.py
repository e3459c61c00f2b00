"""The compiled episode engine (sim.hunt.jit) against the Python stack.

The engine's contract (sim/hunt/jit/episode.py): for an episode the Python search finds
clean, it says CLEAN with the same op count, or asks for a rerun; for an episode in which the
Python search finds a violation, it never says CLEAN. A hunt with the engine therefore finds
exactly what a hunt without it finds; both are checked here.
"""

from __future__ import annotations

import collections

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.hunt import search as S
from sim.hunt.invariants import ALL_NAMES
from sim.hunt.jit.engine import CompiledEpisodes, engine_for
from sim.hunt.jit.episode import CLEAN, EVENT, FALLBACK
from sim.hunt.rng import EpisodeStreams
from sim.hunt.session import DEFAULT_NBLOCKS, OP_KINDS

DESIGNS = ("single-owner", "cow-index", "page-share", "folio-share", "folio-share-reset")


def _compare(
    design,
    seed,
    episodes,
    *,
    kinds=OP_KINDS,
    nfiles=3,
    names=ALL_NAMES,
    episode_len=24,
    nblocks=DEFAULT_NBLOCKS,
    max_ops=None,
):
    """Run ``episodes`` episodes both ways; the engine's outcomes by Python outcome."""
    job = S._Job(
        design,
        seed,
        tuple(kinds),
        nfiles,
        tuple(names),
        episode_len,
        nblocks,
        False,
        None,
    )
    code = engine_for(design, nblocks, nfiles)
    assert code is not None
    eng = CompiledEpisodes(code, nblocks, nfiles, tuple(kinds), episode_len)
    streams = EpisodeStreams(seed)
    seen = collections.Counter()
    for e in range(episodes):
        ep = S._run_episode(job, e, names, max_ops=max_ops, streams=streams)
        status, nops = eng.run(streams.generator(e), list(names), max_ops)
        assert status in (CLEAN, EVENT, FALLBACK)
        if ep.events:
            assert status != CLEAN, (design, seed, e, ep.events[0][2].invariant)
            seen["violation", status] += 1
        else:
            if status == CLEAN:
                assert nops == ep.nops, (design, seed, e)
            seen["clean", status] += 1
    return seen


@pytest.mark.parametrize("design", DESIGNS)
def test_engine_agrees_with_python_episodes(design):
    seen = _compare(design, 11, 120)
    # not vacuous: clean episodes are vouched for; every design but the clean ones breaks
    assert seen["clean", CLEAN] > 0
    assert seen["clean", EVENT] + seen["clean", FALLBACK] <= seen["clean", CLEAN] // 10
    if design in ("single-owner", "cow-index", "folio-share"):
        assert seen["violation", EVENT] > 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    design=st.sampled_from(DESIGNS),
    seed=st.integers(0, 2**32),
    kinds=st.lists(st.sampled_from(OP_KINDS), min_size=1, max_size=6, unique=True),
    nfiles=st.integers(1, 4),
    episode_len=st.sampled_from([4, 24, 60]),
    names=st.lists(st.sampled_from(ALL_NAMES), min_size=1, max_size=4, unique=True),
    max_ops=st.sampled_from([None, None, 3, 17]),
)
def test_engine_agrees_hypothesis(design, seed, kinds, nfiles, episode_len, names, max_ops):
    kinds = tuple(dict.fromkeys(["pwrite", *kinds]))
    _compare(
        design,
        seed,
        6,
        kinds=kinds,
        nfiles=nfiles,
        names=names,
        episode_len=episode_len,
        max_ops=max_ops,
    )


@pytest.mark.parametrize("design", ["cow-index", "page-share", "folio-share"])
def test_hunt_same_result_with_and_without_the_engine(design):
    a = S.hunt(design, seed=3, budget_ops=1500, compiled=False)
    b = S.hunt(design, seed=3, budget_ops=1500, compiled=True)
    assert (a.ops_run, a.episodes) == (b.ops_run, b.episodes)
    assert a.findings.keys() == b.findings.keys()
    for n, f in a.findings.items():
        g = b.findings[n]
        assert (f.ops_to_find, f.episode, f.ops) == (g.ops_to_find, g.episode, g.ops)
        assert f.violation.message == g.violation.message


def test_engine_only_for_built_in_designs():
    assert engine_for("page-share", DEFAULT_NBLOCKS, 3) is not None
    assert engine_for("page-share", DEFAULT_NBLOCKS, 0) is None
    assert engine_for("page-share", 1 << 20, 3) is None

    from sim.memmap.variants import get_variant

    class Mine(type(get_variant("page-share"))):
        pass

    assert engine_for(Mine(), DEFAULT_NBLOCKS, 3) is None
