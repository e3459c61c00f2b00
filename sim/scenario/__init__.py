"""Scenarios: TOML files loaded into typed, checked, frozen dataclasses.

``load_scenario(path, overrides)`` reads a scenario (``None`` = ``scenarios/default.toml``),
``Scenario.with_overrides({key: value})`` derives one (sweeps), ``scenario_keys()`` lists the
valid dotted keys, ``seed_sequence``/``resolve_rng`` seed a run, ``build_stream`` generates
its operation stream. Sizes accept binary suffixes (``"8GiB"``, ``"64k"``); decimal-looking
ones (``"8GB"``) are rejected with a message.
"""

from __future__ import annotations

from sim.scenario.loader import (
    DEFAULT_SCENARIO,
    SCENARIO_DIR,
    Scenario,
    build_stream,
    load_scenario,
    parse_set,
    resolve_rng,
    scenario_from_dict,
    scenario_keys,
    seed_sequence,
)
from sim.scenario.schema import (
    DeviceConfig,
    HardwareConfig,
    OutputConfig,
    RunConfig,
    VariantConfig,
)
from workloads.params import parse_duration_ns, parse_size

__all__ = [
    "Scenario",
    "load_scenario",
    "scenario_from_dict",
    "scenario_keys",
    "parse_set",
    "seed_sequence",
    "resolve_rng",
    "build_stream",
    "parse_size",
    "parse_duration_ns",
    "RunConfig",
    "DeviceConfig",
    "HardwareConfig",
    "VariantConfig",
    "OutputConfig",
    "SCENARIO_DIR",
    "DEFAULT_SCENARIO",
]
