"""One module of constants and one vocabulary of operation kinds (sim.constants)."""

import ast
from pathlib import Path

import pytest

from sim.constants import (
    BLOCK_SIZE,
    BUILTIN_DESIGNS,
    HUNT_KINDS,
    KERNEL_DESIGNS,
    PAGE_SIZE,
    PMD_NR_PAGES,
    PMD_SIZE,
    OpKind,
)

ROOT = Path(__file__).resolve().parent.parent


def test_geometry_is_x86_64_with_4k_pages():
    # arch/x86: PAGE_SHIFT 12, PMD_SHIFT 21; fsdax: block size == page size
    assert PAGE_SIZE == 4096 and PMD_SIZE == 2 << 20
    assert PMD_NR_PAGES * PAGE_SIZE == PMD_SIZE
    assert BLOCK_SIZE == PAGE_SIZE


def test_the_designs_names_are_the_registered_variants():
    from sim.memmap.variants import VARIANTS

    assert tuple(VARIANTS) == BUILTIN_DESIGNS
    assert all(VARIANTS[n].in_kernel for n in KERNEL_DESIGNS)
    assert not any(VARIANTS[n].in_kernel for n in set(BUILTIN_DESIGNS) - set(KERNEL_DESIGNS))


def test_the_stream_op_codes_are_the_vocabulary():
    from workloads.ops import Op

    assert Op is OpKind


@pytest.mark.parametrize("kind", list(OpKind), ids=lambda k: k.label)
def test_every_kind_has_one_xfsio_command_the_parser_knows(kind):
    from sim.xfsio.parse import COMMANDS

    command = kind.xfsio
    assert command.split()[0] in COMMANDS
    assert OpKind.from_xfsio(command) is kind


def test_the_hunt_draws_kinds_of_the_vocabulary():
    from sim.hunt.session import OP_KINDS

    assert OP_KINDS == HUNT_KINDS
    assert len(set(HUNT_KINDS)) == len(HUNT_KINDS)
    for name in HUNT_KINDS:
        assert OpKind.from_hunt(name).hunt == name


def test_results_label_write_faults_by_the_vocabulary():
    from sim.runner import op_label

    assert [op_label(int(k)) for k in OpKind] == [k.name.lower() for k in OpKind]
    assert op_label(99) == "op99"


def _literal_int(node) -> int | None:
    """The value of an int literal or a constant expression of int literals."""
    try:
        v = ast.literal_eval(node)
    except ValueError:
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.LShift, ast.Mult)):
            a, b = _literal_int(node.left), _literal_int(node.right)
            if a is None or b is None:
                return None
            return a << b if isinstance(node.op, ast.LShift) else a * b
        return None
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def test_no_module_defines_its_own_page_or_pmd_size():
    """A module-level name bound to 4096, 512, 2 MiB or order 9 repeats sim.constants."""
    geometry = {PAGE_SIZE, PMD_NR_PAGES, PMD_SIZE}
    repeated = []
    for path in sorted((ROOT / "sim").rglob("*.py")) + sorted((ROOT / "workloads").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "sim/constants.py":
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                name = target.id if isinstance(target, ast.Name) else ""
                v = _literal_int(node.value)
                if v in geometry and any(w in name for w in ("PAGE", "PMD", "BS", "BLOCK")):
                    repeated.append(f"{rel}:{node.lineno} {name} = {v}")
    assert not repeated, "\n".join(repeated)


def _docstrings(tree) -> set[int]:
    """ids of the docstring nodes of a module, its classes and functions."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def test_no_module_spells_a_designs_name():
    """Code names a built-in design by its constant; prose (docstrings, help) may spell it."""
    spelled = []
    for path in sorted((ROOT / "sim").rglob("*.py")) + sorted((ROOT / "workloads").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "sim/constants.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and node.value in BUILTIN_DESIGNS
                and id(node) not in docs
            ):
                spelled.append(f"{rel}:{node.lineno} {node.value!r}")
    assert not spelled, "\n".join(spelled)
