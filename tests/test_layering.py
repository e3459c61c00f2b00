"""The layering is a test: every import of sim/ and workloads/ points one way, and none closes
a cycle.

An operation's path is workloads → fs → dax → memmap → work records → timing → engine →
results.  The imports follow who drives whom on that path: the dax layer drives the
filesystem and the struct pages and emits work records (``DaxFS`` owns a ``FileSystem`` and
a ``MemMap``); the timing layer prices records; the engine runs the timing models; results
hold tables; workloads only make streams (the commands feed them to the model).  So, bottom
first, a module may import its own layer and the layers listed before it:

    records    sim.work
    workloads  workloads (the generators and their streams)
    fs         sim.fs
    memmap     sim.memmap (MemMap, the gauges' scan)
    dax        sim.dax
    timing     sim.timing (media, caches, pricing)
    engine     sim.engine
    results    sim.results, sim.report, sim.plots
    commands   sim.commands, sim.cli, sim.runner, sim.sweep, sim.hunt, sim.xfsio, sim.kernel

Configuration is importable from every layer and imports none of them (only other
configuration and the base): the scenario (sim.scenario), the hardware profiles
(sim.timing.profiles), the designs (sim.memmap.variants and what a design is made of: its
per-page transcription in sim.memmap.reference, its kernels in sim.memmap.kernels, the page
state's layout, its fault rules) and the workload registry and parameters
(workloads.registry, workloads.params).  The base (sim, sim.constants, sim.errors,
sim.prefetch) imports nothing of daxsim.

Every import counts, at module level or inside a function.  ``from pkg import sub`` is an
edge to the submodule ``pkg.sub``; ``from pkg import name`` is an edge to ``pkg``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Layers, bottom first: a module may import its own layer and the layers before it.
LAYERS = ("records", "workloads", "fs", "memmap", "dax", "timing", "engine", "results", "commands")

#: Module (or package prefix) -> layer; the longest matching prefix wins.
PLACE = {
    "sim": "base",
    "sim.constants": "base",
    "sim.errors": "base",
    "sim.prefetch": "base",
    "sim.scenario": "config",
    "sim.timing.profiles": "config",
    "sim.memmap.variants": "config",
    "sim.memmap.fault_rules": "config",
    "sim.memmap.reference": "config",
    "sim.memmap.kernels": "config",
    "sim.memmap.layout": "config",
    "workloads.registry": "config",
    "workloads.params": "config",
    "sim.work": "records",
    "workloads": "workloads",
    "sim.fs": "fs",
    "sim.memmap": "memmap",
    "sim.dax": "dax",
    "sim.timing": "timing",
    "sim.engine": "engine",
    "sim.results": "results",
    "sim.report": "results",
    "sim.plots": "results",
    "sim.commands": "commands",
    "sim.cli": "commands",
    "sim.__main__": "commands",
    "sim.runner": "commands",
    "sim.sweep": "commands",
    "sim.hunt": "commands",
    "sim.xfsio": "commands",
    "sim.kernel": "commands",
}


def _modules() -> dict[str, Path]:
    mods = {}
    for top in ("sim", "workloads"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module of ours an imported name lives in (None: not ours)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports() -> dict[str, dict[str, int]]:
    """Module -> {imported module of ours: line of the first import}."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for mod, path in MODULES.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                subs = [f"{source}.{a.name}" for a in node.names]
                targets = [s for s in subs if s in MODULES]
                if len(targets) < len(subs):
                    targets.append(source)
            else:
                continue
            for t in targets:
                r = _resolve(t)
                if r is not None and r != mod:
                    out[mod].setdefault(r, node.lineno)
    return out


def layer(mod: str) -> str:
    best = max((p for p in PLACE if mod == p or mod.startswith(p + ".")), key=len)
    return PLACE[best]


def allowed(src: str, dst: str) -> bool:
    a, b = layer(src), layer(dst)
    if b == "base":
        return True
    if a == "base":
        return False
    if b == "config":
        return True
    if a == "config":
        return False
    return LAYERS.index(b) <= LAYERS.index(a)


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(MODULES):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, {}))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, {})))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_every_module_has_a_place():
    for mod in MODULES:
        assert layer(mod) in (*LAYERS, "base", "config"), mod


def test_imports_point_down_the_layers():
    bad = []
    for src, dsts in sorted(imports().items()):
        for dst, line in sorted(dsts.items()):
            if not allowed(src, dst):
                rel = MODULES[src].relative_to(ROOT)
                bad.append(f"{rel}:{line}: {src} ({layer(src)}) imports {dst} ({layer(dst)})")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_no_import_cycles():
    graph = imports()
    cycles = _cycles(graph)
    lines = []
    for comp in cycles:
        edges = [
            f"{MODULES[a].relative_to(ROOT)}:{graph[a][b]} {a} -> {b}"
            for a in comp
            for b in graph.get(a, {})
            if b in comp
        ]
        lines.append("cycle: " + ", ".join(comp) + "\n  " + "\n  ".join(edges))
    assert not cycles, "\n".join(lines)


def test_the_checker_sees_imports_inside_functions_and_relative_ones():
    """The reader is not blind: known imports of each kind are in the graph."""
    graph = imports()
    # imports inside functions only (the scenario loader checks names lazily)
    assert "sim.memmap.variants" in graph["sim.scenario.loader"]
    assert "sim.timing.profiles" in graph["sim.scenario.loader"]
    # a package import and a submodule import
    assert "sim.fs" in graph["sim.dax.fsdax"]
    assert "sim.memmap.kernels" in graph["sim.memmap.variants"]
    # and the rule rejects a made-up upward edge and a configuration importing a layer
    assert not allowed("sim.fs.filesystem", "sim.dax.fsdax")
    assert not allowed("sim.scenario.loader", "sim.memmap.memmap")
    assert allowed("sim.dax.fsdax", "sim.memmap.memmap")
