"""Timing layer: hardware profiles, the pmem media model and the pricing of work records.

``sim.timing.profiles``  typed parameters and named presets (``optane-gen1`` default)
``sim.timing.media``     the device model (iMC queues, XPBuffer, AIT, media, wear levelling)
``sim.timing.cache``     set-associative LRU cache hierarchy kernel
``sim.timing.cost``      :class:`CostModel`: WorkRecord -> CPU cycles
"""

from __future__ import annotations

from sim.timing.profiles import (
    PARAMS,
    PRESETS,
    Param,
    Profile,
    load_profile,
    profile_names,
    profile_table,
)

__all__ = [
    "PARAMS",
    "PRESETS",
    "Param",
    "Profile",
    "load_profile",
    "profile_names",
    "profile_table",
]
