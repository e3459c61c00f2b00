"""Expanding a sweep into its runs, validating every one before anything runs.

Order: the cartesian product of the factors in the order the sweep file lists them, the
**last factor varying fastest** (``itertools.product`` order). Run ``i`` is the i-th element
of that product and is seeded with ``numpy.random.SeedSequence(entropy, spawn_key=(i,))``
(with ``stream_factors``, ``spawn_key=(j,)`` where ``j`` numbers the combinations of the
stream factors alone; see :mod:`sim.sweep.spec`).

The plan is what ``sweep.json`` holds; ``--resume`` rebuilds it from the sweep file and
refuses to go on if it differs from the stored one.
"""

from __future__ import annotations

import difflib
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.errors import InputError
from sim.sweep.spec import SweepSpec

__all__ = ["PlannedRun", "SweepPlan", "build_plan", "run_slug", "check_resumable", "PLAN_FORMAT"]

#: Version of the ``sweep.json`` layout.
PLAN_FORMAT = 1

#: Overrides a sweep applies unless its ``[set]`` or ``[factors]`` name the key: the runs of
#: a sweep draw no per-run plots (the sweep draws its own; ``[set] "output.plots" = true``
#: brings them back).
IMPLICIT_SET = {"output.plots": False}


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep.

    Attributes
    ----------
    index : int
        Position in the expansion; also the seed sequence's spawn key.
    factors : dict
        The factor values of this run (dotted key -> value), in factor order.
    scenario : Scenario
        The fully resolved scenario (base + ``[set]`` + factors).
    dirname : str
        The run's directory name under ``runs/``: ``<index:05d>-<slug>``.
    spawn_key : int
        The seed sequence's spawn key: ``index``, or the stream-factor combination's number.
    """

    index: int
    factors: dict[str, Any]
    scenario: Any
    dirname: str
    spawn_key: int = -1

    def __post_init__(self):
        if self.spawn_key < 0:
            object.__setattr__(self, "spawn_key", self.index)

    def to_json(self) -> dict:
        """The run as a JSON-serializable dict (as written in the plan)."""
        return {
            "run": self.index,
            "spawn_key": self.spawn_key,
            "dir": self.dirname,
            "factors": dict(self.factors),
            "scenario": _plain(self.scenario.to_dict()),
        }


@dataclass(frozen=True)
class SweepPlan:
    """The expanded sweep: every run, with the entropy that seeds them."""

    spec: SweepSpec
    entropy: int
    runs: tuple[PlannedRun, ...]
    #: Where the entropy came from: "sweep file", "run.seed", "given" or "random".
    entropy_source: str = "sweep file"

    @property
    def factor_keys(self) -> list[str]:
        """The dotted keys the sweep varies, in order."""
        return [k for k, _ in self.spec.factors]

    def seed_sequence(self, index: int) -> np.random.SeedSequence:
        """The seed sequence of run ``index``."""
        return np.random.SeedSequence(self.entropy, spawn_key=(self.runs[index].spawn_key,))

    def to_json(self) -> dict:
        """The content of ``sweep.json``."""
        return {
            "format": PLAN_FORMAT,
            "name": self.spec.name,
            "sweep_file": str(self.spec.path) if self.spec.path else None,
            "base": self.spec.base,
            "entropy": self.entropy,
            "entropy_source": self.entropy_source,
            "order": "cartesian product, factors in file order, last factor varies fastest",
            "stream_factors": list(self.spec.stream_factors)
            if self.spec.stream_factors is not None
            else None,
            "set": _plain(self.spec.fixed),
            "factors": [{"key": k, "values": _plain(list(v))} for k, v in self.spec.factors],
            "runs": [r.to_json() for r in self.runs],
        }


def build_plan(spec: SweepSpec, *, entropy: int | None = None, loader=None) -> SweepPlan:
    """Load the base scenario and build every run's scenario, validating each.

    Parameters
    ----------
    spec : SweepSpec
        The parsed sweep file.
    entropy : int, optional
        Overrides the entropy (used by ``--resume`` when the sweep drew a random one).
    loader : callable, optional
        ``loader(path) -> Scenario``; default :func:`sim.scenario.load_scenario`.

    Raises
    ------
    InputError
        An unknown key or a bad value in ``[set]`` or ``[factors]``, naming the key and
        value; nothing has run or been written.
    """
    from sim import scenario as scenario_mod

    load = loader or scenario_mod.load_scenario
    where = str(spec.path) if spec.path else "<sweep>"
    try:
        base = load(spec.base)
    except InputError as exc:
        raise InputError(
            f"base scenario: {exc.message}", where=f"{where}: base ({exc.where or spec.base})"
        ) from None
    fixed = dict(spec.fixed)
    _check_keys(scenario_mod.scenario_keys(base), "set", list(fixed), where)
    for key, value in IMPLICIT_SET.items():
        if key not in fixed and key not in dict(spec.factors):
            fixed[key] = value
    try:
        common = base.with_overrides(fixed) if fixed else base
    except InputError as exc:
        raise InputError(f"[set]: {exc.message}", where=f"{where}: set") from None
    if not any(k == "workload.generator" for k, _ in spec.factors):
        _check_keys(
            scenario_mod.scenario_keys(common), "factors", [k for k, _ in spec.factors], where
        )
    # Each factor value on its own first, so a bad value is named precisely.
    for key, values in spec.factors:
        for value in values:
            try:
                common.with_overrides({key: value})
            except InputError as exc:
                raise InputError(
                    f"factor {key!r} value {value!r}: {exc.message}",
                    where=f"{where}: factors.{key}",
                ) from None
    source = "given"
    if entropy is None:
        entropy, source = spec.entropy, "sweep file"
    if entropy is None:
        entropy, source = _scenario_seed(common), "run.seed"
    if entropy is None:
        entropy, source = int(np.random.SeedSequence().entropy), "random"
    keys = [k for k, _ in spec.factors]
    stream_keys = spec.stream_factors
    streams: dict[tuple, int] = {}
    if stream_keys is not None:  # number the stream-factor combinations in product order
        values = [v for k, v in spec.factors if k in stream_keys]
        streams = {_key(c): j for j, c in enumerate(itertools.product(*values))}
    runs = []
    for index, combo in enumerate(itertools.product(*[v for _, v in spec.factors])):
        factors = dict(zip(keys, combo, strict=True))
        try:
            scen = common.with_overrides(factors) if factors else common
        except InputError as exc:
            raise InputError(
                f"run {index} ({_describe(factors)}): {exc.message}", where=f"{where}: factors"
            ) from None
        spawn_key = index
        if stream_keys is not None:
            spawn_key = streams[_key(tuple(factors[k] for k in stream_keys))]
        runs.append(
            PlannedRun(
                index=index,
                factors=factors,
                scenario=scen,
                dirname=run_slug(index, factors),
                spawn_key=spawn_key,
            )
        )
    return SweepPlan(spec=spec, entropy=int(entropy), runs=tuple(runs), entropy_source=source)


def _key(values: tuple) -> tuple:
    return tuple(json.dumps(v, sort_keys=True) for v in values)


def _check_keys(valid_keys, table: str, keys: list[str], where: str) -> None:
    valid = set(valid_keys)
    for key in keys:
        if key not in valid:
            close = difflib.get_close_matches(key, sorted(valid), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(f"unknown scenario key {key!r}{hint}", where=f"{where}: {table}.{key}")


def _scenario_seed(scen: Any) -> int | None:
    run = getattr(scen, "run", None)
    seed = getattr(run, "seed", None)
    if seed is None:
        seed = scen.to_dict().get("run", {}).get("seed")
    return None if seed is None else int(seed)


def _describe(factors: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in factors.items()) or "no factors"


_SLUG_BAD = re.compile(r"[^A-Za-z0-9._-]+")
_GENERIC_LEAVES = {"name", "profile", "size", "generator"}


def run_slug(index: int, factors: dict[str, Any], *, max_len: int = 60) -> str:
    """The directory name of run ``index``: ``00012-clones16-cow-index-pmem``.

    Each factor contributes its value, prefixed with the key's last part when the value is a
    number (``clones16``); names are kept short and filesystem-safe.
    """
    parts = []
    for key, value in factors.items():
        leaf = key.rsplit(".", 1)[-1]
        if isinstance(value, bool) or isinstance(value, int | float):
            parts.append(f"{leaf}{value}")
        elif (
            isinstance(value, str)
            and leaf not in _GENERIC_LEAVES
            and len(factors) > 1
            and _looks_numeric(value)
        ):
            parts.append(f"{leaf}{value}")
        else:
            parts.append(str(value) if not isinstance(value, list | dict) else leaf)
    slug = _SLUG_BAD.sub("_", "-".join(parts)).strip("._-")[:max_len].rstrip("._-")
    return f"{index:05d}-{slug}" if slug else f"{index:05d}"


def _looks_numeric(s: str) -> bool:
    return bool(re.match(r"^[0-9]", s))


def _plain(obj: Any) -> Any:
    """JSON-normalised copy (tuples become lists, numpy scalars become Python ones)."""
    from sim.results.store import _json_default  # one place for JSON conversion

    return json.loads(json.dumps(obj, default=_json_default, sort_keys=False))


def check_resumable(stored: dict, plan: SweepPlan, *, where: str) -> None:
    """Raise InputError (saying what differs) unless ``stored`` (sweep.json) matches ``plan``."""
    fresh = plan.to_json()
    if stored.get("format") != PLAN_FORMAT:
        raise InputError(
            f"sweep.json has format {stored.get('format')!r}, this daxsim writes {PLAN_FORMAT}; "
            "start a new sweep with another --out",
            where=where,
        )
    problems = []
    if stored.get("entropy") != fresh["entropy"]:
        problems.append(
            f"entropy {stored.get('entropy')} was used, the sweep file now gives {fresh['entropy']}"
        )
    if stored.get("factors") != fresh["factors"]:
        problems.append(
            f"factors were {_fmt_factors(stored.get('factors'))}, "
            f"now {_fmt_factors(fresh['factors'])}"
        )
    if stored.get("stream_factors") != fresh["stream_factors"]:
        problems.append(
            f"stream_factors were {stored.get('stream_factors')}, now {fresh['stream_factors']}"
        )
    if stored.get("set") != fresh["set"]:
        problems.append(f"[set] was {stored.get('set')}, now {fresh['set']}")
    if not problems:
        old_runs, new_runs = stored.get("runs", []), fresh["runs"]
        if len(old_runs) != len(new_runs):
            problems.append(f"{len(old_runs)} runs were planned, now {len(new_runs)}")
        else:
            for old, new in zip(old_runs, new_runs, strict=True):
                if _comparable(old) != _comparable(new):
                    diff = _first_difference(old.get("scenario"), new.get("scenario"))
                    problems.append(
                        f"run {new['run']} differs ({diff or 'directory name or factors'}); "
                        "the base scenario or the scenario defaults changed"
                    )
                    break
    if problems:
        raise InputError(
            "the sweep file no longer matches the plan this sweep was started with: "
            + "; ".join(problems)
            + ". Resume with the original sweep file, or start a new "
            "sweep in another --out directory",
            where=where,
        )


def _comparable(run: dict) -> dict:
    """A planned run without its free-text scenario description (which changes no result)."""
    scenario = {k: v for k, v in (run.get("scenario") or {}).items() if k != "description"}
    return {**run, "scenario": scenario}


def _fmt_factors(factors) -> str:
    if not factors:
        return "none"
    return ", ".join(f"{f['key']}={f['values']}" for f in factors)


def _first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            d = _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
            if d:
                return d
        return None
    if a != b:
        return f"{prefix.rstrip('.')}: {a!r} then, {b!r} now"
    return None
