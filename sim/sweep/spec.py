"""The sweep file: a base scenario, fixed overrides and factors, read from TOML.

A sweep file looks like this::

    base = "../vm-clones.toml"     # the base scenario, relative to this file
    name = "clone-farm"            # optional; default: the file name without .toml
    entropy = 20251125             # optional; default: the base scenario's run.seed
    stream_factors = ["workload.clones"]   # optional; see below

    [set]                          # optional: overrides applied to every run
    "workload.image_size" = "16MiB"

    [factors]                      # dotted scenario keys -> lists of values
    "workload.clones" = [1, 4, 16]
    "variant.name" = ["cow-index", "page-share"]

Keys may be quoted dotted strings (as above) or TOML dotted keys (``workload.clones = [...]``);
both mean the same scenario key. Factors are expanded as a cartesian product in the order
they are written, the last factor varying fastest (see :mod:`sim.sweep.plan`).

Seeds: by default run ``i`` is seeded with ``SeedSequence(entropy, spawn_key=(i,))``, so every
run draws its own operation stream. ``stream_factors`` (a list of factor keys) opts into common
random numbers: runs that agree on those factors share one seed, hence one operation stream,
so the other factors (design, memmap placement, hardware) are compared on identical input.
The spawn key is then the position of the run's stream-factor values in the product of those
factors alone.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import InputError, read_text_input

__all__ = ["SweepSpec", "load_sweep", "parse_sweep"]

_TOP_KEYS = ("base", "name", "entropy", "stream_factors", "set", "factors")


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file (nothing validated against the scenario model yet).

    Attributes
    ----------
    path : Path or None
        The sweep file (None when parsed from a string).
    base : str
        The base scenario path, resolved against the sweep file's directory (when no such
        file exists there, a scenario of the project's ``scenarios/`` directory with that
        name, so ``base = "vm-clones"`` works from anywhere).
    name : str
        The sweep's name (used in the default output directory).
    entropy : int or None
        The root entropy of the runs' seed sequences; None means "the base scenario's run.seed".
    fixed : dict of str to value
        Overrides applied to every run (the ``[set]`` table), dotted keys in file order.
    factors : tuple of (str, tuple)
        The factors in file order: dotted key and its values.
    stream_factors : tuple of str or None
        Factors whose values alone choose a run's seed (common random numbers); None means
        every run has its own seed.
    """

    path: Path | None
    base: str
    name: str
    entropy: int | None
    fixed: dict[str, Any] = field(default_factory=dict)
    factors: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    stream_factors: tuple[str, ...] | None = None

    @property
    def nruns(self) -> int:
        """Number of runs in the cartesian product."""
        n = 1
        for _key, values in self.factors:
            n *= len(values)
        return n


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check the shape of a sweep file.

    Raises
    ------
    InputError
        The file is missing, is not TOML, or has an unknown key or a malformed table.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("sweep file not found", where=str(path))
    text = read_text_input(path, "sweep file")
    return parse_sweep(text, path=path)


def parse_sweep(text: str, *, path: Path | None = None) -> SweepSpec:
    """Parse the text of a sweep file (see the module docstring for the format)."""
    where = str(path) if path else "<sweep>"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", where=where) from None
    for key in doc:
        if key not in _TOP_KEYS:
            raise InputError(
                f"unknown key {key!r}{_suggest(key, _TOP_KEYS)}; allowed: {', '.join(_TOP_KEYS)}",
                where=where,
            )
    base = doc.get("base")
    if not isinstance(base, str) or not base:
        raise InputError(
            "'base' (the base scenario file, relative to the sweep file) is required", where=where
        )
    base_path = Path(base)
    if not base_path.is_absolute() and path is not None:
        base_path = path.parent / base_path
    if not base_path.exists():
        base_path = _shipped_scenario(base) or base_path
    name = doc.get("name", path.stem if path else "sweep")
    if not isinstance(name, str) or not name or "/" in name:
        raise InputError(
            f"'name' must be a non-empty string without '/', got {name!r}", where=where
        )
    entropy = doc.get("entropy")
    if entropy is not None and (
        not isinstance(entropy, int) or isinstance(entropy, bool) or entropy < 0
    ):
        raise InputError(
            f"'entropy' must be a non-negative integer, got {entropy!r}", where=f"{where}: entropy"
        )
    fixed_table = doc.get("set", {})
    if not isinstance(fixed_table, dict):
        raise InputError("'set' must be a table of dotted scenario keys", where=f"{where}: set")
    fixed = dict(_flatten(fixed_table, leaf=lambda v: not isinstance(v, dict)))
    factor_table = doc.get("factors", {})
    if not isinstance(factor_table, dict):
        raise InputError(
            "'factors' must be a table of dotted scenario keys -> lists", where=f"{where}: factors"
        )
    factors: list[tuple[str, tuple[Any, ...]]] = []
    for key, values in _flatten(factor_table, leaf=lambda v: not isinstance(v, dict)):
        if not isinstance(values, list):
            raise InputError(
                f"factor {key!r} must be a list of values, got {values!r}",
                where=f"{where}: factors.{key}",
            )
        if not values:
            raise InputError(f"factor {key!r} has no values", where=f"{where}: factors.{key}")
        dups = {_hashable(v) for v in values}
        if len(dups) != len(values):
            raise InputError(
                f"factor {key!r} lists a value twice: {values!r}", where=f"{where}: factors.{key}"
            )
        if key in fixed:
            raise InputError(
                f"{key!r} is both in [set] and in [factors]", where=f"{where}: factors.{key}"
            )
        factors.append((key, tuple(values)))
    stream = doc.get("stream_factors")
    if stream is not None:
        keys = [k for k, _ in factors]
        if not isinstance(stream, list) or not all(isinstance(k, str) for k in stream):
            raise InputError(
                f"'stream_factors' must be a list of factor keys, got {stream!r}",
                where=f"{where}: stream_factors",
            )
        for k in stream:
            if k not in keys:
                raise InputError(
                    f"{k!r} is not a factor{_suggest(k, keys)}; stream_factors name factors "
                    f"of [factors] ({', '.join(keys) or 'none'})",
                    where=f"{where}: stream_factors",
                )
        if len(set(stream)) != len(stream):
            raise InputError(f"a key is listed twice: {stream!r}", where=f"{where}: stream_factors")
        stream = tuple(k for k in keys if k in stream)  # factor order
    return SweepSpec(
        path=path,
        base=str(base_path),
        name=name,
        entropy=entropy,
        fixed=fixed,
        factors=tuple(factors),
        stream_factors=stream,
    )


def _shipped_scenario(base: str) -> Path | None:
    """``scenarios/<base>`` (or ``scenarios/<base>.toml``) when ``base`` is not found next to
    the sweep file."""
    from sim.scenario import SCENARIO_DIR

    for candidate in (SCENARIO_DIR / base, SCENARIO_DIR / f"{base}.toml"):
        if candidate.is_file():
            return candidate
    return None


def _flatten(table: dict, *, leaf, prefix: str = ""):
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if leaf(value):
            yield dotted, value
        else:
            yield from _flatten(value, leaf=leaf, prefix=f"{dotted}.")


def _hashable(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return (type(v).__name__, v)


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
