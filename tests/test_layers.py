"""The layering the architecture promises, read from the source: the core package never imports Dagster or
the layers above it (assets, pipelines, resources), `ouroboros.errors` is a leaf, and the core's module-level
imports form no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "ouroboros"
UPPER = ("dagster", "assets", "pipelines", "resources")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def _core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_the_core_never_imports_dagster_or_a_higher_layer():
    offenders = {_module(p): sorted(i for i in _imports(p, False) if i.split(".")[0] in UPPER)
                 for p in _core_files()}
    assert not {m: i for m, i in offenders.items() if i}


def test_errors_is_a_leaf():
    assert not {i for i in _imports(CORE / "errors.py", False) if i.split(".")[0] == "ouroboros"}


def test_no_import_cycle_among_core_modules():
    modules = {_module(p): p for p in _core_files()}
    graph = {}
    for name, path in modules.items():
        # module-level imports only: an import inside a function runs late and is how a lower layer may call
        # a registry lazily without a cycle at import time
        found = _imports(path, True)
        # `from pkg import submodule` depends on the submodule, not on the package's __init__
        deps = {i for i in found if i in modules and i != name
                and not any(j.startswith(i + ".") and j in modules for j in found)}
        graph[name] = deps
    seen, stack, cycles = set(), [], []

    def visit(node: str) -> None:
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for dep in sorted(graph[node]):
            visit(dep)
        stack.pop()

    for name in sorted(graph):
        visit(name)
    assert not cycles, cycles[:3]
