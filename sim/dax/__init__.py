"""fsdax: per-file address_spaces with DAX xarrays, fault paths, CoW, memory failure.

See :mod:`sim.dax.xarray_dax` for the entry encoding and tree shape and
:mod:`sim.dax.fsdax` for the :class:`DaxFS` facade.
"""

from __future__ import annotations

from sim.dax.xarray_dax import (
    DAX_EMPTY,
    DAX_LOCKED,
    DAX_PMD,
    DAX_SHIFT,
    DAX_ZERO_PAGE,
    DaxXArray,
    dax_make_entry,
    dax_to_pfn,
    height_for_index,
    xa_mk_value,
    xa_to_value,
)

__all__ = [
    "DAX_EMPTY",
    "DAX_LOCKED",
    "DAX_PMD",
    "DAX_SHIFT",
    "DAX_ZERO_PAGE",
    "DaxXArray",
    "dax_make_entry",
    "dax_to_pfn",
    "height_for_index",
    "xa_mk_value",
    "xa_to_value",
    "DaxFS",
    "Vma",
    "MemoryFailureResult",
    "generation_of",
]


def __getattr__(name):  # lazy: fsdax imports sim.fs and sim.memmap
    if name in ("DaxFS", "Vma", "MemoryFailureResult", "generation_of"):
        from sim.dax import fsdax

        return getattr(fsdax, name)
    raise AttributeError(name)
