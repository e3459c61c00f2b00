"""Shrink a failing op sequence to a minimal one that breaks the same invariant, and write it.

:func:`shrink` runs delta debugging (Zeller's ddmin: remove chunks of ops, then single ops,
until no single op can go) and then simplifies the arguments of each op (offsets to 0, lengths
to one page or one byte, whole-file clones, one pattern byte). Every candidate is replayed from
scratch on a fresh filesystem (:class:`~sim.hunt.session.Session`); it "fails" when the
*same* invariant is violated after one of its ops (every file is read by ``data_integrity``
after every op here), and the sequence is cut right after that op.

:func:`write_reproducer` writes ``OUT/<variant>-<invariant>.xfsio`` in the format of
``shared/conformance/xfstests/README.md``: header comments (design, seed, invariant, the
explanation), the xfs_io lines, and ``@expect_invariant NAME violated`` so that
``daxsim xfsio FILE --variant V`` replays it and reports the same violation.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

from sim.hunt.invariants import Violation, association_rule, describe_state
from sim.hunt.session import DEFAULT_NBLOCKS, PAGE, Op, Session

__all__ = ["ShrinkResult", "replay_ops", "shrink", "explain", "write_reproducer", "replay_file"]


@dataclass
class ShrinkResult:
    """A minimal failing sequence.

    Attributes
    ----------
    ops : list of Op
        The shrunk ops (the last one breaks the invariant).
    lines : list of str
        Their xfs_io lines (first ``@mkfs``).
    violation : Violation
        The violation the last op causes.
    op_text : str
        The xfs_io lines of the breaking op.
    replays : int
        Candidate sequences replayed while shrinking.
    explanation : str
        :func:`explain` of the final replay.
    """

    ops: list
    lines: list
    violation: Violation
    op_text: str
    replays: int
    explanation: str = ""


def replay_ops(variant, ops, invariant: str, *, nblocks: int = DEFAULT_NBLOCKS):
    """Replay ``ops`` on a fresh session; return ``(session, op_index, violation)`` at the
    first op after which ``invariant`` is violated, or ``(session, -1, None)``."""
    sess = Session(variant, nblocks=nblocks)
    for i, op in enumerate(ops):
        if not sess.apply(op):
            continue
        v = sess.check_one(invariant, full=True)
        if v is not None:
            return sess, i, v
    return sess, -1, None


class _Tester:
    def __init__(self, variant, invariant, nblocks, max_replays):
        self.variant, self.invariant, self.nblocks = variant, invariant, nblocks
        self.replays = 0
        self.max_replays = max_replays
        self.cache: dict = {}

    def __call__(self, ops):
        """Failing prefix of ``ops`` (cut after the breaking op) or None."""
        key = tuple(ops)
        if key in self.cache:
            return self.cache[key]
        if self.replays >= self.max_replays:
            return None
        self.replays += 1
        _s, i, v = replay_ops(self.variant, ops, self.invariant, nblocks=self.nblocks)
        out = list(ops[: i + 1]) if v is not None else None
        self.cache[key] = out
        return out


def _ddmin(ops, test):
    ops = list(ops)
    n = 2
    while len(ops) >= 2:
        size = -(-len(ops) // n)
        chunks = [ops[i : i + size] for i in range(0, len(ops), size)]
        done = False
        for c in chunks:  # reduce to a chunk
            r = test(c)
            if r is not None:
                ops, n, done = r, 2, True
                break
        if not done:
            for j in range(len(chunks)):  # reduce to a complement
                comp = [o for i, c in enumerate(chunks) if i != j for o in c]
                r = test(comp)
                if r is not None:
                    ops, n, done = r, max(n - 1, 2), True
                    break
        if not done:
            if n >= len(ops):
                break
            n = min(len(ops), 2 * n)
    return ops


def _arg_candidates(op: Op):
    """Simpler versions of one op, simplest first."""
    a = list(op.args)
    k = op.kind
    outs = []

    def add(new):
        if tuple(new) != tuple(a):
            outs.append(op.replace_args(new))

    if k == "pwrite":
        add([0, PAGE, 0x61])
        add([a[0], PAGE, 0x61])
        add([0, a[1], 0x61])
        add([a[0], a[1], 0x61])
        add([(a[0] // PAGE) * PAGE, -(-a[1] // PAGE) * PAGE, a[2]])
    elif k == "clone":
        add([0, 0, 0])
        add([a[0], a[1], PAGE])
        add([0, a[1], a[2]])
        add([a[0], 0, a[2]])
    elif k == "dedupe":
        add([a[0], a[1], PAGE])
        add([0, 0, a[2]])
    elif k in ("mread", "hwpoison"):
        if k == "hwpoison":
            outs.append(Op("mread", op.path, tuple(a[:4])))
        add([a[2] - a[2] % PAGE, PAGE, a[2] - a[2] % PAGE, 1 if k == "mread" else PAGE])
        add([a[0], a[1], a[2], 1 if k == "mread" else PAGE])
        add([a[0], a[1], a[2] - a[2] % PAGE, a[3]])
    elif k == "mwrite":
        outs.append(Op("mread", op.path, tuple(a[:4])))
        add([a[2] - a[2] % PAGE, PAGE, a[2] - a[2] % PAGE, 1, 0x62])
        add([a[0], a[1], a[2], 1, a[4]])
        add([a[0], a[1], a[2] - a[2] % PAGE, a[3], a[4]])
    elif k == "truncate":
        add([0])
        add([(a[0] // PAGE) * PAGE])
    elif k in ("punch", "unshare"):
        add([0, PAGE])
        add([(a[0] // PAGE) * PAGE, PAGE])
    elif k == "zero":
        add([0, PAGE, 1])
        add([(a[0] // PAGE) * PAGE, PAGE, a[2]])
    elif k == "munmap":
        pass
    return outs


def _remove_pairs(ops, test, budget: int):
    """Try removing two ops at once (ddmin stops at single-op minimality)."""
    ops = list(ops)
    changed = True
    while changed and budget > 0:
        changed = False
        n = len(ops)
        for i in range(n):
            for j in range(i + 1, n):
                if budget <= 0:
                    return ops
                budget -= 1
                r = test(ops[:i] + ops[i + 1 : j] + ops[j + 1 :])
                if r is not None:
                    ops, changed = r, True
                    break
            if changed:
                break
    return ops


def _simplify(ops, test, budget: int):
    ops = list(ops)
    for i in range(len(ops)):
        if i >= len(ops):
            break
        for cand in _arg_candidates(ops[i]):
            if budget <= 0:
                return ops
            budget -= 1
            trial = ops[:i] + [cand] + ops[i + 1 :]
            # a mapping op's window must follow: rewrite the same window in later ops
            old = ops[i]
            if old.kind in ("mread", "mwrite", "hwpoison") and cand.args[:2] != old.args[:2]:
                trial = trial[: i + 1] + [
                    o.replace_args(tuple(cand.args[:2]) + tuple(o.args[2:]))
                    if o.path == old.path
                    and o.kind in ("mread", "mwrite", "hwpoison", "munmap")
                    and tuple(o.args[:2]) == tuple(old.args[:2])
                    else o
                    for o in trial[i + 1 :]
                ]
            r = test(trial)
            if r is not None:
                ops = r
                break
    return ops


def shrink(
    variant, ops, invariant: str, *, nblocks: int = DEFAULT_NBLOCKS, max_replays: int = 400
) -> ShrinkResult | None:
    """Shrink ``ops`` (which break ``invariant``) to a minimal failing sequence.

    Returns None if the sequence does not reproduce the violation from scratch.
    """
    test = _Tester(variant, invariant, nblocks, max_replays)
    first = test(list(ops))
    if first is None:
        return None
    cur = _ddmin(first, test)
    cur = _remove_pairs(cur, test, budget=max(0, max_replays // 2 - test.replays))
    cur = _simplify(cur, test, budget=max(0, max_replays - test.replays))
    cur = _ddmin(cur, test)
    sess, i, v = replay_ops(variant, cur, invariant, nblocks=nblocks)
    cur = cur[: i + 1]
    a, b = sess.op_lines[-1]
    res = ShrinkResult(
        cur,
        list(sess.lines),
        v.with_op(len(sess.op_lines) - 1),
        "; ".join(sess.lines[a:b]),
        test.replays,
    )
    res.explanation = explain(res, sess.variant.name, sess.dax)
    return res


def explain(res: ShrinkResult, variant_name: str, dfs=None) -> str:
    """Short explanation: the invariant, the page and its state before and after the op."""
    v = res.violation
    lines = [
        f"{variant_name}: {v.invariant} {'(known limit) ' if v.limit else ''}"
        f"broken by op {v.op_index + 1} of {len(res.ops)}: {res.op_text}"
    ]
    if v.pfn >= 0 and v.before is not None and dfs is not None:
        rule = association_rule(dfs.mm.variant)
        lines.append(
            f"  page pfn {v.pfn}: before {describe_state(dfs, rule, *v.before)}; "
            f"after {describe_state(dfs, rule, *v.after)}"
        )
    elif v.pfn >= 0 and v.before is not None:
        lines.append(f"  page pfn {v.pfn}: before {v.before}, after {v.after}")
    lines.append(f"  {v.message}")
    return "\n".join(lines)


def _atomic_write(path: str, text: str) -> None:
    d = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".hunt-", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def reproducer_text(
    res: ShrinkResult,
    *,
    variant_spec: str,
    variant_name: str,
    seed: int,
    ops_to_find: int,
    explanation: str,
) -> str:
    v = res.violation
    head = [
        "# daxsim hunt reproducer (generated; fs block size 4096 = page size)",
        f"# design: {variant_name}   (replay: daxsim xfsio THIS_FILE --variant {variant_spec})",
        f"# seed: {seed}   found after {ops_to_find} checked ops, shrunk to {len(res.ops)} ops "
        f"({len(res.lines)} lines)",
        f"# invariant: {v.invariant}"
        + (" (known limit of the design, not a defect)" if v.limit else ""),
    ]
    head += [f"# {x}" for x in explanation.splitlines()]
    tail = f"@expect_invariant {v.invariant} violated"
    return "\n".join(head + list(res.lines) + [tail]) + "\n"


def write_reproducer(
    out_dir: str,
    res: ShrinkResult,
    *,
    variant_spec: str,
    variant_name: str,
    seed: int,
    ops_to_find: int,
    explanation: str,
) -> str:
    """Write ``out_dir/<variant>-<invariant>.xfsio`` atomically; returns its path."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in variant_name)
    path = os.path.join(out_dir, f"{safe}-{res.violation.invariant}.xfsio")
    _atomic_write(
        path,
        reproducer_text(
            res,
            variant_spec=variant_spec,
            variant_name=variant_name,
            seed=seed,
            ops_to_find=ops_to_find,
            explanation=explanation,
        ),
    )
    return path


def replay_file(path: str, variant, *, rmap: bool = True):
    """Replay a reproducer with the xfs_io runner (hunt invariants registered); returns the
    runner (``.result.checks`` holds the ``expect_invariant`` outcome)."""
    from sim.hunt.invariants import runner_invariants
    from sim.memmap.variants import get_variant
    from sim.xfsio.parse import parse_script
    from sim.xfsio.runner import XfsioRunner

    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    r = XfsioRunner(
        get_variant(variant),
        filename=os.path.basename(path),
        rmap=rmap,
        check_model=False,
        device_bytes=1 << 20,
        invariants=runner_invariants(),
    )
    r.run(parse_script(text, os.path.basename(path)))
    return r
