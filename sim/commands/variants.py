"""``daxsim variants``: the table of design variants (kernel generations, each with the releases
that run it, and registered user designs)."""

from __future__ import annotations

import argparse

from sim.memmap import VARIANTS

__all__ = ["configure", "main", "format_table"]


def configure(parser: argparse.ArgumentParser) -> None:
    """No options: the table is always complete."""


def format_table() -> str:
    """The variants table as text: name, alias, kernel releases, description; then how each
    kernel range was found (``Variant.kernel_range.evidence``)."""
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
    lines.append("")
    lines.append("How the kernel ranges were found:")
    for v in VARIANTS.values():
        if v.kernel_range is not None:
            lines.append(f"  {v.name} {v.kernel_range}: {v.kernel_range.evidence}")
    lines.append("A user design is named as module:Class (a sim.memmap.Variant subclass).")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Print the table of design variants; return 0."""
    print(format_table())
    return 0
