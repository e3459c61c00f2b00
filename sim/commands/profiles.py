"""``daxsim profiles``: list the hardware profiles with their headline figures."""

from __future__ import annotations

import argparse
import json

from sim.timing.profiles import PRESETS, load_profile

__all__ = ["configure", "main"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``daxsim profiles``."""
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")


def main(args: argparse.Namespace) -> int:
    """List every profile: name, one-line description, key figures."""
    rows = []
    for name in PRESETS:
        prof = load_profile(name)
        rows.append(
            {"name": name, "description": prof.description, "key_figures": prof.key_figures()}
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        default = " (default)" if r["name"] == "optane-gen1" else ""
        print(f"{r['name']:<{width}}  {r['description']}{default}")
        print(f"{'':<{width}}  {r['key_figures']}")
    return 0
