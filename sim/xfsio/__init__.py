"""xfs_io scripts: the parser (:mod:`sim.xfsio.parse`) and the runner (:mod:`sim.xfsio.runner`)."""
