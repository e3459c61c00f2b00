"""Compiled (numba) episode driver of the hunt: op generator, checks and episodes, on the
layers' compiled twins (:mod:`sim.fs.compiled`, :mod:`sim.dax.compiled`)."""
