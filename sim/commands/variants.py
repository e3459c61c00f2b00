"""``daxsim variants``: the table of design variants (kernel generations and proposals)."""

from __future__ import annotations

import argparse

from sim.memmap import VARIANTS

__all__ = ["configure", "main", "format_table"]


def configure(parser: argparse.ArgumentParser) -> None:
    """No options: the table is always complete."""


def format_table() -> str:
    """The variants table as text: name, alias, kernel versions, description."""
    rows = [("name", "alias", "kernels", "description")]
    for v in VARIANTS.values():
        kernels = v.kernels if v.in_kernel else "none (proposal)"
        rows.append((v.name, ", ".join(v.aliases) or "-", kernels, v.description))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for k, r in enumerate(rows):
        cells = [c.ljust(w) for c, w in zip(r[:3], widths, strict=True)]
        lines.append("  ".join(cells) + "  " + r[3])
        if k == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * len(r[3]))
    missing = [v.name for v in VARIANTS.values() if not v.in_kernel]
    if missing:
        lines.append("")
        lines.append(f"No released kernel has: {', '.join(missing)}.")
    lines.append("A user design is named as module:Class (a sim.memmap.Variant subclass).")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Print the table of design variants; return 0."""
    print(format_table())
    return 0
