"""The engine: CPUs executing operation streams in simulated time (integer CPU cycles).

``run_functional`` prices every operation in isolation (no SimPy); ``run_timing`` runs the
SimPy engine in which the per-address_space xa_lock, the DAX entry locks and the device's
read/write channels are shared resources, so contention, queueing and tail latency emerge.
Both take the same input: one sequence of ``(op, WorkRecord)`` per CPU.
"""

from __future__ import annotations

from sim.engine.core import (
    Engine,
    EngineResult,
    LockTable,
    run_engine,
    run_functional,
    run_timing,
)

__all__ = ["Engine", "EngineResult", "LockTable", "run_engine", "run_functional", "run_timing"]
