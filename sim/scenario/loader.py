"""Load, check and override scenarios (TOML, stdlib ``tomllib``).

Every key is checked: an unknown key, a wrong type or an out-of-range value raises
:class:`sim.errors.InputError` with ``where`` = the scenario file (or ``--set k=v``) and a
message that starts with the dotted key and says what is allowed; a misspelt key names the
closest valid one.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.constants import DEFAULT_CPU_FREQ_GHZ
from sim.errors import InputError, read_text_input
from sim.scenario.schema import (
    KNOWN_PROFILES,
    KNOWN_VARIANTS,
    SECTIONS,
    DeviceConfig,
    HardwareConfig,
    OutputConfig,
    RunConfig,
    VariantConfig,
)
from workloads.params import ParamError
from workloads.registry import (
    WorkloadSpec,
    build_dataclass,
    build_workload,
    dataclass_keys,
    dataclass_to_table,
    suggest,
)

__all__ = [
    "Scenario",
    "load_scenario",
    "scenario_from_dict",
    "scenario_keys",
    "parse_set",
    "seed_sequence",
    "resolve_rng",
    "build_stream",
    "SCENARIO_DIR",
    "DEFAULT_SCENARIO",
]

#: The ready-made scenarios shipped with the project.
SCENARIO_DIR = Path(__file__).resolve().parents[2] / "scenarios"
DEFAULT_SCENARIO = SCENARIO_DIR / "default.toml"

_TOP_KEYS = ("description", *SECTIONS, "workload")


@dataclass(frozen=True)
class Scenario:
    """A fully checked scenario; every default filled in.

    Attributes
    ----------
    name : str
        The scenario file's stem (``"default"``).
    path : str or None
        Absolute path of the scenario file (None for one built from a dict).
    description : str
        Free text from the file's top-level ``description``.
    run, device, hardware, variant, output
        Section dataclasses (:mod:`sim.scenario.schema`).
    workload : workloads.registry.WorkloadSpec
        The generator name and its params dataclass.
    """

    name: str
    path: str | None
    description: str
    run: RunConfig
    device: DeviceConfig
    hardware: HardwareConfig
    variant: VariantConfig
    workload: WorkloadSpec
    output: OutputConfig
    _raw: dict = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict:
        """The resolved scenario as nested plain values (TOML/JSON-serialisable).

        Sizes are int bytes and durations int ns; ``scenario_from_dict(s.to_dict())``
        gives an equal scenario.
        """
        out: dict[str, Any] = {}
        if self.description:
            out["description"] = self.description
        for sec in ("run", "device", "hardware", "variant", "workload", "output"):
            obj = getattr(self, sec)
            out[sec] = obj.to_table() if sec == "workload" else dataclass_to_table(obj)
        out["hardware"]["overrides"] = dict(self.hardware.overrides)
        return out

    def flat(self) -> dict[str, Any]:
        """``{dotted key: value}`` for every key of :meth:`to_dict` (a results row)."""
        out: dict[str, Any] = {}

        def walk(d: Mapping, prefix: str) -> None:
            for k, v in d.items():
                key = f"{prefix}.{k}" if prefix else k
                if isinstance(v, Mapping) and key != "hardware.overrides":
                    walk(v, key)
                elif key == "hardware.overrides":
                    for ok, ov in v.items():
                        out[f"hardware.overrides.{ok}"] = ov
                else:
                    out[key] = v

        walk(self.to_dict(), "")
        return out

    def with_overrides(self, overrides: Mapping[str, Any], *, where: str = "override") -> Scenario:
        """A new scenario with ``{dotted key: value}`` applied, with the same checks.

        Values are Python values (as TOML would give them: ``4``, ``"8GiB"``, ``true``).
        Setting a ``generator`` to a different generator resets that table's parameters to
        the new generator's defaults (later keys in ``overrides`` may then set them).

        Raises
        ------
        InputError
            ``where`` names the override (``"override workload.clones=-1"``).
        """
        raw = copy.deepcopy(self._raw)
        sources: dict[str, str] = {}
        for key, value in overrides.items():
            _apply(raw, key, value)
            sources[key] = f"{where} {key}={value!r}"
        return _build(raw, name=self.name, path=self.path, sources=sources)


def _split(key: str) -> list[str]:
    parts = key.split(".")
    if len(parts) >= 3 and parts[0] == "hardware" and parts[1] == "overrides":
        return ["hardware", "overrides", ".".join(parts[2:])]
    return parts


def _apply(raw: dict, key: str, value: Any) -> None:
    """Set dotted ``key`` in the nested raw table (a generator change resets its table)."""
    parts = _split(key)
    if not key or any(not p for p in parts):
        raise InputError(f"malformed key {key!r}; expected section.key", where="override")
    d = raw
    for p in parts[:-1]:
        nxt = d.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            d[p] = nxt
        d = nxt
    last = parts[-1]
    if last == "generator" and d.get("generator") not in (None, value):
        d.clear()
    d[last] = value


def parse_set(item: str) -> tuple[str, Any]:
    """Parse a ``--set section.key=value`` item.

    The value is read as a TOML value (``4``, ``0.5``, ``true``, ``"x"``, ``[1, 2]``), and
    as a bare string when it is not one (``8GiB``, ``cow-index``).

    Raises
    ------
    InputError
        No ``=`` or an empty key.
    """
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InputError(f"expected section.key=value, got {item!r}", where="--set")
    text = text.strip()
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return key, value


def _resolve_path(path: str | os.PathLike | None) -> Path:
    if path is None:
        return DEFAULT_SCENARIO
    p = Path(path)
    if not p.exists() and not p.suffix and (SCENARIO_DIR / f"{p}.toml").exists():
        return SCENARIO_DIR / f"{p}.toml"
    return p


def load_scenario(path: str | os.PathLike | None = None, overrides: Iterable[str] = ()) -> Scenario:
    """Load and check a scenario file, then apply ``--set`` overrides.

    Parameters
    ----------
    path : str or path-like, optional
        A TOML file; a bare name (``"vm-clones"``) also finds ``scenarios/<name>.toml``;
        None is ``scenarios/default.toml``.
    overrides : iterable of str
        ``"section.key=value"`` items, applied in order with the same checks.

    Returns
    -------
    Scenario

    Raises
    ------
    InputError
        ``where`` is the file (or ``--set ITEM`` for a bad override), the message starts
        with the dotted key and says what is allowed.
    """
    p = _resolve_path(path)
    where = str(p)
    text = read_text_input(p, "scenario")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", where=where) from None
    sources: dict[str, str] = {}
    for item in overrides:
        key, value = parse_set(item)
        _apply(raw, key, value)
        sources[key] = f"--set {item}"
    desc = raw.get("description")
    if sources and isinstance(desc, str) and desc and "description" not in sources:
        # The file's words describe the file: say what --set changed since.
        raw["description"] = f"{desc} (--set changed {', '.join(sources)})"
    return _build(raw, name=p.stem, path=str(p.resolve()), sources=sources)


def scenario_from_dict(
    data: Mapping[str, Any],
    *,
    name: str = "scenario",
    where: str = "<dict>",
    base_dir: str | None = None,
) -> Scenario:
    """Check and build a scenario from nested plain values (the form of ``to_dict``)."""
    return _build(copy.deepcopy(dict(data)), name=name, path=None, where=where, base_dir=base_dir)


def _where_for(key: str | None, sources: Mapping[str, str], default: str) -> str:
    if key:
        for k, src in sources.items():
            if key == k or key.startswith(k + ".") or k.startswith(key + "."):
                return src
    return default


def _build(
    raw: dict,
    *,
    name: str,
    path: str | None,
    sources: Mapping[str, str] = (),
    where: str | None = None,
    base_dir: str | None = None,
) -> Scenario:
    sources = dict(sources or {})
    where = where or path or "<scenario>"
    if base_dir is None:
        base_dir = os.path.dirname(path) if path else str(SCENARIO_DIR)
    try:
        parts = _build_parts(raw, base_dir)
    except ParamError as exc:
        raise InputError(str(exc), where=_where_for(exc.key, sources, where)) from None
    return Scenario(name=name, path=path, _raw=raw, **parts)


def _section(raw: dict, sec: str) -> dict:
    v = raw.get(sec, {})
    if not isinstance(v, dict):
        raise ParamError(f"expected a table [{sec}], got {type(v).__name__} {v!r}", key=sec)
    return v


def _build_parts(raw: dict, base_dir: str) -> dict:
    for k in raw:
        if k not in _TOP_KEYS:
            raise ParamError(
                f"unknown section{suggest(k, list(_TOP_KEYS))} (valid: {', '.join(_TOP_KEYS)})",
                key=k,
            )
    desc = raw.get("description", "")
    if not isinstance(desc, str):
        raise ParamError(f"expected a string, got {type(desc).__name__}", key="description")
    out: dict[str, Any] = {"description": desc}
    for sec, cls in SECTIONS.items():
        table = dict(_section(raw, sec))
        if sec == "hardware":
            ov = table.pop("overrides", {})
            if not isinstance(ov, dict):
                raise ParamError(
                    f"expected a table of dotted profile keys, got {type(ov).__name__} {ov!r}",
                    key="hardware.overrides",
                )
            hw = build_dataclass(cls, table, sec)
            out[sec] = _check_hardware(hw, _flatten_overrides(ov))
        else:
            out[sec] = build_dataclass(cls, table, sec)
    out["variant"] = _check_variant(out["variant"])
    wl = dict(_section(raw, "workload"))
    wl.setdefault("generator", "vm-clones")
    out["workload"] = build_workload(wl, "workload", base_dir)
    _check_fits(out["workload"], out["device"])
    _check_memory(out["workload"])
    return out


def _check_memory(workload) -> None:
    """Refuse a workload that would need more memory than the machine has."""
    from sim.limits import format_bytes, physical_memory_bytes

    estimate = getattr(workload.params, "memory_bytes", None)
    got = estimate() if estimate is not None else None
    if got is None or got[0] <= physical_memory_bytes():
        return
    raise ParamError(
        f"the workload would need up to {format_bytes(got[0])} of memory ({got[1]}); "
        f"the limit is this machine's {format_bytes(physical_memory_bytes())}",
        key="workload",
    )


def _check_fits(workload, device: DeviceConfig) -> None:
    """Refuse a workload whose first writes (an image, layers, files written before anything
    is shared) cannot fit the device: each would fail with ENOSPC."""
    from workloads.params import format_size

    written = getattr(workload.params, "written_bytes", None)
    got = written() if written is not None else None
    if got is None or got[0] <= device.size:
        return
    nbytes, keys = got
    raise ParamError(
        f"the workload writes {format_size(nbytes)} ({keys}) before it shares anything, "
        f"more than device.size = {format_size(device.size)} holds; "
        f"allowed: device.size >= {format_size(nbytes)} or a smaller {keys}",
        key="device.size",
    )


def _flatten_overrides(ov: Mapping, prefix: str = "") -> dict:
    """``{"media": {"t_read_ns": 1}}`` (TOML dotted keys) -> ``{"media.t_read_ns": 1}``."""
    flat = {}
    for k, v in ov.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, Mapping):
            flat.update(_flatten_overrides(v, key))
        else:
            flat[key] = v
    return flat


def _check_hardware(hw: HardwareConfig, overrides: dict) -> HardwareConfig:
    try:
        from sim.timing.profiles import load_profile, profile_names
    except ImportError:  # pragma: no cover - only while sim.timing is absent
        if hw.profile not in KNOWN_PROFILES:
            hint = suggest(hw.profile, list(KNOWN_PROFILES))
            raise ParamError(
                f"unknown profile {hw.profile!r}{hint}; allowed: {', '.join(KNOWN_PROFILES)}",
                key="hardware.profile",
            ) from None
        return dataclasses.replace(hw, overrides=dict(overrides))
    names = profile_names()
    if hw.profile not in names:
        raise ParamError(
            f"unknown profile {hw.profile!r}{suggest(hw.profile, names)}; "
            f"allowed: {', '.join(names)}",
            key="hardware.profile",
        )
    try:
        prof = load_profile(hw.profile, overrides)
    except InputError as exc:
        key = f"hardware.overrides.{exc.where}" if exc.where else "hardware.overrides"
        msg = exc.message.replace("did you mean '", "did you mean 'hardware.overrides.")
        raise ParamError(msg, key=key) from None
    return dataclasses.replace(hw, overrides={k: prof.values[k] for k in overrides})


def _check_variant(v: VariantConfig) -> VariantConfig:
    try:
        from sim.memmap.variants import VARIANTS, get_variant
    except ImportError:  # pragma: no cover - only while sim.memmap is absent
        if v.name not in KNOWN_VARIANTS:
            hint = suggest(v.name, list(KNOWN_VARIANTS))
            raise ParamError(
                f"unknown variant {v.name!r}{hint}; allowed: {', '.join(KNOWN_VARIANTS)}",
                key="variant.name",
            ) from None
        return v
    try:
        var = get_variant(v.name)
    except InputError as exc:
        raise ParamError(
            f"{exc.message}{suggest(v.name, list(VARIANTS))}", key="variant.name"
        ) from None
    name = getattr(var, "name", v.name)
    return dataclasses.replace(v, name=name if name in VARIANTS else v.name)


def scenario_keys(scenario: Scenario | None = None) -> list[str]:
    """Every valid dotted key of ``scenario`` (default: the default scenario).

    Workload keys depend on the scenario's generator (and a nested ``base``'s);
    ``hardware.overrides.<param>`` is listed for every hardware profile parameter.
    """
    sc = scenario if scenario is not None else load_scenario(None)
    keys = ["description"]
    for sec, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            if sec == "hardware" and f.name == "overrides":
                try:
                    from sim.timing.profiles import PARAMS

                    keys.extend(f"hardware.overrides.{p.name}" for p in PARAMS)
                except ImportError:  # pragma: no cover
                    pass
            else:
                keys.append(f"{sec}.{f.name}")
    keys.append("workload.generator")
    keys.extend(dataclass_keys(sc.workload.params, "workload"))
    return keys


def seed_sequence(scenario: Scenario, run_index: int | None = None) -> np.random.SeedSequence:
    """``SeedSequence(run.seed)``, or ``SeedSequence(run.seed, spawn_key=(run_index,))``."""
    key = () if run_index is None else (int(run_index),)
    return np.random.SeedSequence(scenario.run.seed, spawn_key=key)


def resolve_rng(scenario: Scenario, run_index: int | None = None) -> np.random.Generator:
    """The workload's random generator: ``default_rng(seed_sequence(scenario, run_index))``."""
    return np.random.default_rng(seed_sequence(scenario, run_index))


def build_stream(
    scenario: Scenario, run_index: int | None = None, *, cycles_per_ns: float | None = None
) -> tuple[np.ndarray, dict]:
    """Generate the scenario's operation stream (the same for every design variant).

    Parameters
    ----------
    scenario : Scenario
    run_index : int, optional
        A sweep's run number (seeds ``spawn_key=(run_index,)``).
    cycles_per_ns : float, optional
        Core clock for ``t_cycles``; default the hardware profile's ``cpu.freq_ghz``
        (2.2 when sim.timing is absent).

    Returns
    -------
    stream : ndarray of dtype workloads.ops.OP_DTYPE
    meta : dict
    """
    from workloads.registry import generate

    if cycles_per_ns is None:
        try:
            from sim.timing.profiles import load_profile

            cycles_per_ns = load_profile(
                scenario.hardware.profile, scenario.hardware.overrides
            ).freq_ghz
        except ImportError:  # pragma: no cover
            cycles_per_ns = DEFAULT_CPU_FREQ_GHZ
    return generate(
        scenario.workload,
        resolve_rng(scenario, run_index),
        cpus=scenario.run.cpus,
        cycles_per_ns=cycles_per_ns,
    )
