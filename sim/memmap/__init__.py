"""Struct-page metadata for every pmem page, and the associate/disassociate design variants.

``MemMap(npages, variant)`` keeps ``mapping``/``index`` per 4 KiB page (16 bytes per page)
and applies associate/disassociate operations one at a time (``associate``,
``disassociate``: the per-fault path of the dax layer) or as batches (``apply``: a compiled
loop with exactly the sequential result).  ``VARIANTS`` holds the designs (see
``daxsim variants``); :mod:`sim.memmap.reference` is the readable per-page oracle.
The at-any-moment statistics (``residue_pages``, ``phantom_pages``, ``share_histogram``,
``share_degree_max``) are gauges the compiled kernels keep at every state transition, so
reading them is O(1) on any device size; :mod:`sim.memmap.scan` recomputes them by scanning
(the check, and the fallback for user designs).
"""

from __future__ import annotations

from sim.memmap.fault_rules import FaultRules
from sim.memmap.layout import (
    COMMON_SITES,
    COUNTERS,
    OP_ASSOCIATE,
    OP_DISASSOCIATE,
    PMD_NPAGES,
    PMD_ORDER,
    SITES,
)
from sim.memmap.memmap import MemMap, check_batch
from sim.memmap.reference import PageState
from sim.memmap.variants import VARIANTS, Variant, get_variant, register, unregister

__all__ = [
    "MemMap",
    "Variant",
    "VARIANTS",
    "get_variant",
    "register",
    "unregister",
    "FaultRules",
    "PageState",
    "check_batch",
    "OP_ASSOCIATE",
    "OP_DISASSOCIATE",
    "PMD_NPAGES",
    "PMD_ORDER",
    "COUNTERS",
    "SITES",
    "COMMON_SITES",
]
