"""``daxsim show-config``: print a resolved scenario with every default, and its profile.

The scenario part is valid TOML (it loads back to the same scenario); help, units and
allowed values are comments. The hardware profile's parameters follow as comment lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from sim.scenario import Scenario, load_scenario
from sim.scenario.schema import SECTION_HELP, SECTIONS
from workloads.params import describe, format_size
from workloads.registry import WorkloadSpec, get_generator

__all__ = ["configure", "main", "render_scenario", "render_profile"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``show-config``."""
    parser.add_argument(
        "scenario",
        nargs="?",
        default=None,
        help="scenario TOML file or name in scenarios/ (default: the default scenario)",
    )
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key, e.g. --set workload.clones=64 (repeatable)",
    )
    parser.add_argument(
        "--profile",
        default=None,
        metavar="NAME",
        help="show this hardware profile (same as --set hardware.profile=NAME)",
    )


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot render {type(v).__name__}")


def _line(key: str, value: Any, field: dataclasses.Field | None) -> str:
    meta = dict(field.metadata) if field is not None else {}
    kind = meta.get("kind")
    if kind == "size":
        text = (
            _toml_value(format_size(value))
            if format_size(value) != str(value)
            else _toml_value(value)
        )
        unit = f"bytes ({value})" if format_size(value) != str(value) else "bytes"
    else:
        text = _toml_value(value)
        unit = meta.get("unit", "")
    note = "; ".join(
        x for x in (unit, meta.get("help", ""), f"allowed: {describe(field)}" if field else "") if x
    )
    return f"{key} = {text}".ljust(40) + (f"  # {note}" if note else "")


def _params_lines(obj: Any, table: str, out: list[str]) -> None:
    nested = []
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, WorkloadSpec):
            nested.append((f, v))
            continue
        out.append(_line(f.name, v, f))
    for f, spec in nested:
        out.append("")
        out.append(f"[{table}.{f.name}]  # {f.metadata.get('help', '')}")
        out.append(
            f"generator = {_toml_value(spec.generator)}".ljust(40)
            + f"  # {get_generator(spec.generator).help}"
        )
        _params_lines(spec.params, f"{table}.{f.name}", out)


def render_scenario(sc: Scenario) -> str:
    """The resolved scenario as commented TOML (every default filled in)."""
    out = [f"# scenario {sc.name!r}" + (f" from {sc.path}" if sc.path else "")]
    if sc.description:
        out.append(f"description = {_toml_value(sc.description)}")
    for sec in ("run", "device", "hardware", "variant", "workload", "output"):
        out.append("")
        out.append(f"[{sec}]  # {SECTION_HELP[sec]}")
        if sec == "workload":
            gen = get_generator(sc.workload.generator)
            out.append(
                f"generator = {_toml_value(sc.workload.generator)}".ljust(40) + f"  # {gen.help}"
            )
            _params_lines(sc.workload.params, "workload", out)
            continue
        obj = getattr(sc, sec)
        for f in dataclasses.fields(SECTIONS[sec]):
            if sec == "hardware" and f.name == "overrides":
                continue
            out.append(_line(f.name, getattr(obj, f.name), f))
        if sec == "hardware":
            out.append("")
            out.append("[hardware.overrides]  # profile parameters overridden (dotted keys)")
            for k, v in sc.hardware.overrides.items():
                out.append(f"{json.dumps(k)} = {_toml_value(v)}")
    return "\n".join(out) + "\n"


def render_profile(sc: Scenario) -> str | None:
    """The scenario's hardware profile as comment lines, or None without sim.timing."""
    try:
        from sim.timing import load_profile, profile_table
    except ImportError:
        return None
    prof = load_profile(sc.hardware.profile, sc.hardware.overrides)
    rows = profile_table(prof)
    width = max((len(r[0]) for r in rows), default=10)
    out = [
        f"# hardware profile {prof.name!r}: {getattr(prof, 'description', '')}",
        "# (* = overridden in [hardware.overrides])",
    ]
    for key, value, unit, desc in rows:
        mark = "*" if key in sc.hardware.overrides else " "
        val = f"{value} {unit}".strip()
        out.append(f"# {mark} {key.ljust(width)}  {val:<22} {desc}")
    return "\n".join(out) + "\n"


def main(args: argparse.Namespace) -> int:
    """Print the resolved scenario and its hardware profile; InputError -> exit 2."""
    sets = list(args.sets)
    if args.profile:
        sets.append(f"hardware.profile={args.profile}")
    sc = load_scenario(args.scenario, sets)
    text = render_scenario(sc)
    prof = render_profile(sc)
    sys.stdout.write(text)
    if prof:
        sys.stdout.write("\n" + prof)
    return 0
