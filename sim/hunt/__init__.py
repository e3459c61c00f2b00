"""``daxsim hunt``: search for design defects and shrink each to a minimal xfs_io script.

:mod:`sim.hunt.invariants` (what is checked, in full), :mod:`sim.hunt.incremental`
(association truth on the pages an op touched), :mod:`sim.hunt.session` (ops run as xfs_io
commands), :mod:`sim.hunt.model` (the plain content model), :mod:`sim.hunt.search` (seeded
random search), :mod:`sim.hunt.shrink` (delta debugging and the reproducer file).
Designs are loaded by :func:`sim.memmap.get_variant`, as in every command.
"""

from __future__ import annotations

from sim.hunt.invariants import (
    ALL_NAMES,
    INVARIANT_NAMES,
    LIMIT_NAMES,
    Violation,
    evaluate,
    runner_invariants,
)
from sim.hunt.model import ContentModel, HuntModel
from sim.hunt.search import Finding, HuntResult, hunt
from sim.hunt.session import Op, Session
from sim.hunt.shrink import ShrinkResult, replay_file, shrink, write_reproducer

__all__ = [
    "ALL_NAMES",
    "INVARIANT_NAMES",
    "LIMIT_NAMES",
    "Violation",
    "evaluate",
    "runner_invariants",
    "ContentModel",
    "HuntModel",
    "Op",
    "Session",
    "hunt",
    "HuntResult",
    "Finding",
    "shrink",
    "ShrinkResult",
    "write_reproducer",
    "replay_file",
]
