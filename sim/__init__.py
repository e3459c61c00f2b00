"""daxsim: a cycle-level simulator of Linux fsdax on persistent memory with reflinked files.

Layers (see README.md): ``sim.memmap`` (struct pages and the design variants), ``sim.fs``
(reflink filesystem), ``sim.dax`` (DAX xarray, faults, memory failure), ``sim.timing``
(hardware profiles and the media model), ``sim.engine`` (SimPy), ``sim.results``.
"""

__version__ = "0.1.0"
