"""Run the hunt over designs: shrink each finding, write reproducers, the table and Parquet."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.hunt.invariants import ALL_NAMES, LIMIT_NAMES
from sim.hunt.search import HuntResult, hunt
from sim.hunt.shrink import shrink, write_reproducer

__all__ = [
    "HuntRow",
    "hunt_and_shrink",
    "results_frame",
    "format_table",
    "write_parquet",
    "COLUMN_TITLES",
]

#: Short column titles of the printed table.
COLUMN_TITLES = {
    "association_truth": "association truth",
    "nothing_left_behind": "nothing left behind",
    "no_warnings": "no warnings",
    "memory_failure": "memory failure (rmap)",
    "data_integrity": "data integrity",
    "refcount_conservation": "refcount conservation",
    "no_sigbus": "no SIGBUS",
    "memory_failure_fallback": "mf fallback (known limit)",
}


@dataclass
class HuntRow:
    """One (design, invariant) cell."""

    variant: str
    invariant: str
    status: str  # "violated", "limit" or "none"
    ops_to_find: int
    shrunk_ops: int
    shrunk_lines: int
    ops_run: int
    seed: int
    reproducer: str
    message: str
    #: ``daxsim hunt --confirm``: ``"confirmed"``, ``"not reproduced"``, ``"no kernel
    #: cached"`` or ``""`` (not replayed), the kernel release it ran on, and what the kernel
    #: showed (see :mod:`sim.hunt.confirm`).
    confirmation: str = ""
    kernel: str = ""
    kernel_evidence: str = ""


def hunt_and_shrink(
    variant_spec,
    *,
    out_dir: str | None,
    seed: int = 0,
    budget_ops=2000,
    time_s=None,
    kinds=None,
    nfiles: int = 3,
    episode_len: int = 24,
    names=ALL_NAMES,
    say=None,
    progress=None,
    workers: int = 1,
    compiled: bool | None = None,
) -> tuple[HuntResult, list]:
    """Hunt one design, shrink every finding and write its reproducer into ``out_dir``.

    ``workers`` processes run the search's episodes, ``compiled`` chooses the compiled
    episode engine (see :func:`~sim.hunt.search.hunt`).
    Returns ``(HuntResult, rows)`` with one :class:`HuntRow` per name.
    """
    res = hunt(
        variant_spec,
        seed=seed,
        budget_ops=budget_ops,
        time_s=time_s,
        kinds=kinds,
        nfiles=nfiles,
        names=names,
        episode_len=episode_len,
        progress=progress,
        workers=workers,
        compiled=compiled,
    )
    rows = []
    spec = variant_spec if isinstance(variant_spec, str) else res.variant
    for name in names:
        f = res.findings.get(name)
        if f is None:
            rows.append(HuntRow(res.variant, name, "none", -1, -1, -1, res.ops_run, seed, "", ""))
            continue
        s = shrink(variant_spec, f.ops, name, nblocks=res.nblocks)
        f.shrunk = s
        path = ""
        if s is not None and out_dir is not None:
            path = write_reproducer(
                out_dir,
                s,
                variant_spec=spec,
                variant_name=res.variant,
                seed=seed,
                ops_to_find=f.ops_to_find,
                explanation=s.explanation,
            )
        if say is not None:
            say(
                (s.explanation if s is not None else f.violation.message)
                + (f"\n  reproducer: {path}" if path else "")
            )
        rows.append(
            HuntRow(
                res.variant,
                name,
                "limit" if name in LIMIT_NAMES else "violated",
                f.ops_to_find,
                len(s.ops) if s else -1,
                len(s.lines) if s else -1,
                res.ops_run,
                seed,
                path,
                (s.violation.message if s else f.violation.message),
            )
        )
    return res, rows


def results_frame(rows) -> pd.DataFrame:
    """Tidy table: one row per (variant, invariant).

    "None" is a null, not a sentinel: a count with no value (``ops_to_find``, ``shrunk_ops``,
    ``shrunk_lines`` of a design where nothing was found, or a finding that did not shrink) is
    ``<NA>`` in a nullable ``Int64`` column, and a text with no value (``reproducer``,
    ``message``, ``confirmation``, ``kernel``, ``kernel_evidence``) is ``None``. ``ops_run``
    and ``seed`` always have a value (``int64``).
    """
    df = pd.DataFrame([r.__dict__ for r in rows], columns=list(HuntRow.__dataclass_fields__))
    for c in ("ops_run", "seed"):
        df[c] = df[c].astype(np.int64)
    for c in ("ops_to_find", "shrunk_ops", "shrunk_lines"):
        df[c] = df[c].astype("Int64").mask(df[c] < 0)
    for c in ("variant", "invariant", "status"):
        df[c] = df[c].astype(object)
    for c in ("reproducer", "message", "confirmation", "kernel", "kernel_evidence"):
        df[c] = df[c].astype(object).where(df[c] != "", None)
    return df


def _cell(r: HuntRow) -> str:
    if r.status == "none":
        return f"none in {r.ops_run} ops"
    word = "limit" if r.status == "limit" else "found"
    shr = f", shrunk to {r.shrunk_lines} lines" if r.shrunk_lines >= 0 else ""
    return f"{word} after {r.ops_to_find} ops{shr}"


def _kernel_cell(rows) -> str:
    """The ``on a kernel`` cell of one design: each replayed finding's confirmation."""
    parts = []
    for r in rows:
        if not r.confirmation:
            continue
        where = f" on {r.kernel}" if r.kernel else ""
        ev = f" ({r.kernel_evidence})" if r.kernel_evidence else ""
        parts.append(f"{COLUMN_TITLES.get(r.invariant, r.invariant)}: {r.confirmation}{where}{ev}")
    return "; ".join(parts) or "-"


def format_table(rows, names=ALL_NAMES) -> str:
    """One row per design, one column per invariant (plain text); with confirmations
    (``daxsim hunt --confirm``) a last column says what a kernel of the design showed."""
    variants = list(dict.fromkeys(r.variant for r in rows))
    by = {(r.variant, r.invariant): r for r in rows}
    head = ["design"] + [COLUMN_TITLES.get(n, n) for n in names]
    body = [[v] + [_cell(by[(v, n)]) if (v, n) in by else "-" for n in names] for v in variants]
    if any(r.confirmation for r in rows):
        head.append("on a kernel")
        for b, v in zip(body, variants, strict=True):
            b.append(_kernel_cell([r for r in rows if r.variant == v]))
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(b) for b in body])


def write_parquet(df: pd.DataFrame, path: str) -> None:
    """Write ``df`` to ``path`` atomically (temp file in the same directory, then rename)."""
    import io

    from sim.results.outputs import output_file

    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    output_file(path, lambda fh: fh.write(buf.getbuffer()))
