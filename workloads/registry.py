"""Registry of workload generators, and typed construction of their parameters.

A generator is a function ``generate(params, rng, *, cpus=1, cycles_per_ns=2.2)`` returning
``(stream, meta)``: a stream of dtype :data:`workloads.ops.OP_DTYPE` and a JSON-serialisable
dict (``meta["file_names"]`` lists the path of each file id). It is registered with its frozen
parameter dataclass under a name (``"vm-clones"``).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from sim.constants import DEFAULT_CPU_FREQ_GHZ
from sim.errors import InputError
from workloads.params import ParamError, coerce

__all__ = [
    "Generator",
    "WorkloadSpec",
    "register",
    "generator_names",
    "get_generator",
    "build_dataclass",
    "build_workload",
    "dataclass_to_table",
    "dataclass_keys",
    "suggest",
    "generate",
]


@dataclasses.dataclass(frozen=True)
class Generator:
    """A registered generator.

    Attributes
    ----------
    name : str
        Registered name (``"vm-clones"``).
    params : type
        Frozen dataclass of its parameters (fields declared with ``workloads.params.param``).
    generate : callable
        ``generate(params, rng, *, cpus=1, cycles_per_ns=2.2) -> (stream, meta)``.
    help : str
        One-line description.
    """

    name: str
    params: type
    generate: Callable
    help: str


@dataclasses.dataclass(frozen=True)
class WorkloadSpec:
    """A generator name with its validated parameters."""

    generator: str
    params: Any

    def to_table(self) -> dict:
        """``{"generator": name, **params}`` with plain TOML/JSON values."""
        return {"generator": self.generator, **dataclass_to_table(self.params)}


_REGISTRY: dict[str, Generator] = {}
_MODULES = (
    "vm_clones",
    "containers",
    "db_snapshots",
    "dedupe",
    "backup",
    "memory_failure",
    "xfsio",
)


def register(name: str, params: type, help: str) -> Callable:
    """Decorator registering ``generate`` under ``name`` with its params dataclass."""

    def deco(fn: Callable) -> Callable:
        _REGISTRY[name] = Generator(name, params, fn, help)
        return fn

    return deco


def _load_all() -> None:
    for m in _MODULES:
        importlib.import_module(f"workloads.{m}")


def generator_names() -> list[str]:
    """Names of every registered generator, in registration order."""
    _load_all()
    return list(_REGISTRY)


def suggest(word: str, candidates: list[str], prefix: str = "") -> str:
    """``"; did you mean 'prefix.x'?"`` for the closest candidate, or ``""``."""
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f"; did you mean '{prefix}{close[0]}'?" if close else ""


def get_generator(name: str) -> Generator:
    """The registered generator ``name``.

    Raises
    ------
    InputError
        Unknown name, with the list of names and the closest one.
    """
    _load_all()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        names = list(_REGISTRY)
        raise InputError(
            f"unknown generator {name!r}{suggest(str(name), names)} (known: {', '.join(names)})",
            where="workload.generator",
        ) from None


def build_dataclass(
    cls: type, table: Mapping[str, Any], prefix: str, base_dir: str | None = None
) -> Any:
    """Check a table against a params dataclass and build it; missing keys get defaults.

    Parameters
    ----------
    cls : type
        Frozen dataclass with fields declared by ``workloads.params.param``.
    table : mapping
        Raw values (from TOML or overrides).
    prefix : str
        Dotted prefix of these keys, for messages (``"workload"``).
    base_dir : str, optional
        Folder that relative ``path`` parameters are resolved against (default: the current
        folder).

    Raises
    ------
    ParamError
        With ``key`` set to the dotted key: unknown key (with the closest valid key), wrong
        type, out-of-range value.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in table.items():
        if k not in fields:
            valid = [f"{prefix}.{n}" for n in fields]
            raise ParamError(
                f"unknown key{suggest(k, list(fields), prefix + '.')} (valid keys: "
                f"{', '.join(valid)})",
                key=f"{prefix}.{k}",
            )
        f = fields[k]
        if f.metadata.get("kind") == "workload":
            if isinstance(v, WorkloadSpec):
                kwargs[k] = v
                continue
            if not isinstance(v, Mapping):
                raise ParamError(
                    f"expected a table with 'generator' and its parameters, got "
                    f"{type(v).__name__} {v!r}",
                    key=f"{prefix}.{k}",
                )
            default = f.default
            if v.get("generator", default.generator) == default.generator:
                # Same generator as the default: the given keys refine the default's values.
                v = {**default.to_table(), **v}
            kwargs[k] = build_workload(v, f"{prefix}.{k}", base_dir)
            continue
        if isinstance(v, Mapping):
            raise ParamError(
                f"expected a value, got a table; allowed: {_describe(f)}", key=f"{prefix}.{k}"
            )
        try:
            kwargs[k] = coerce(f, v)
        except ParamError as exc:
            raise ParamError(exc.message, key=f"{prefix}.{k}") from None
        if f.metadata.get("kind") == "path":
            path = os.path.normpath(os.path.join(base_dir or os.getcwd(), kwargs[k]))
            if not os.path.isfile(path):
                raise ParamError(f"no such file: {path}", key=f"{prefix}.{k}")
            kwargs[k] = path
    for f in fields.values():
        if f.metadata.get("kind") == "path" and f.name not in kwargs:
            path = os.path.normpath(os.path.join(base_dir or os.getcwd(), f.default))
            if not os.path.isfile(path):
                raise ParamError(
                    f"no such file: {path} (the default; set it)", key=f"{prefix}.{f.name}"
                )
            kwargs[f.name] = path
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if check is not None:
        try:
            check()
        except ParamError as exc:
            raise ParamError(
                exc.message, key=f"{prefix}.{exc.key}" if exc.key else prefix
            ) from None
    return obj


def _describe(f: dataclasses.Field) -> str:
    from workloads.params import describe

    return describe(f)


def build_workload(
    table: Mapping[str, Any], prefix: str = "workload", base_dir: str | None = None
) -> WorkloadSpec:
    """Build a :class:`WorkloadSpec` from ``{"generator": name, **params}``.

    Raises
    ------
    ParamError
    """
    table = dict(table)
    name = table.pop("generator", None)
    if name is None:
        raise ParamError("missing 'generator'", key=f"{prefix}.generator")
    try:
        gen = get_generator(name)
    except InputError as exc:
        raise ParamError(exc.message, key=f"{prefix}.generator") from None
    try:
        params = build_dataclass(gen.params, table, prefix, base_dir)
    except ParamError as exc:
        if (
            exc.message.startswith("unknown key")
            and exc.key
            and exc.key.count(".") == prefix.count(".") + 1
        ):
            raise ParamError(
                exc.message.replace("unknown key", f"unknown key for generator '{gen.name}'", 1),
                key=exc.key,
            ) from None
        raise
    return WorkloadSpec(gen.name, params)


def _plain(v: Any) -> Any:
    if isinstance(v, WorkloadSpec):
        return v.to_table()
    if dataclasses.is_dataclass(v):
        return dataclass_to_table(v)
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def dataclass_to_table(obj: Any) -> dict:
    """Every field of a params dataclass as plain values (nested workloads as tables)."""
    return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def dataclass_keys(cls_or_obj: Any, prefix: str) -> list[str]:
    """Dotted keys of a params dataclass; a nested workload contributes its own keys."""
    keys = []
    for f in dataclasses.fields(cls_or_obj):
        if f.metadata.get("kind") == "workload":
            spec = getattr(cls_or_obj, f.name, None)
            if not isinstance(spec, WorkloadSpec):
                spec = f.default
            keys.append(f"{prefix}.{f.name}.generator")
            keys.extend(dataclass_keys(spec.params, f"{prefix}.{f.name}"))
        else:
            keys.append(f"{prefix}.{f.name}")
    return keys


def generate(
    spec: WorkloadSpec,
    rng: Any = None,
    *,
    cpus: int = 1,
    cycles_per_ns: float = DEFAULT_CPU_FREQ_GHZ,
) -> tuple[np.ndarray, dict]:
    """Run the generator of ``spec`` (``rng`` normalised with ``np.random.default_rng``)."""
    gen = get_generator(spec.generator)
    stream, meta = gen.generate(
        spec.params, np.random.default_rng(rng), cpus=cpus, cycles_per_ns=cycles_per_ns
    )
    meta = dict(meta)
    meta.setdefault("generator", spec.generator)
    return stream, meta
