"""No import cycles: between modules, and between the packages of one parent.

Every import statement counts, those inside functions too (a function-local import only
postpones a cycle, it does not remove it). Beside the layer contract (tests/test_layers.py),
which allows imports between the packages of one layer, this test refuses any cycle among
them. KNOWN_PACKAGE_CYCLES lists the cycles still to be removed, by name; it only shrinks:
a listed cycle that is gone fails the test until it is taken off the list.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

#: Cycles between sibling packages that are known and still to be removed (none now).
KNOWN_PACKAGE_CYCLES: set[tuple[str, str]] = set()


def _modules(src: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package's __init__) for every module under ``src``."""
    found = {}
    for path in sorted(src.rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def import_graph(src: Path) -> dict[str, set[str]]:
    """Module -> the modules of ``src`` it imports, anywhere in its code.

    ``from package import name`` points at ``package.name`` when that is a module, else at
    ``package`` (whose ``__init__`` defines or re-exports ``name``).
    """
    modules = _modules(src)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        here = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join([*parent, *([node.module] if node.module else [])])
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between siblings: an import from ``a.x.m`` of ``a.y.n`` is an edge from
    ``a.x`` to ``a.y`` (the children of their deepest common package)."""
    siblings: dict[str, set[str]] = {}
    for source, targets in graph.items():
        for target in targets:
            s, t = source.split("."), target.split(".")
            common = 0
            while common < min(len(s), len(t)) and s[common] == t[common]:
                common += 1
            if common < len(s) and common < len(t):
                a, b = ".".join(s[: common + 1]), ".".join(t[: common + 1])
                siblings.setdefault(a, set()).add(b)
                siblings.setdefault(b, set())
    return siblings


def test_no_module_imports_itself_through_others():
    assert cycles(import_graph(SRC)) == []


def test_no_package_cycles_but_the_known_ones():
    siblings = package_graph(import_graph(SRC))
    gone = {(a, b) for a, b in KNOWN_PACKAGE_CYCLES if b not in siblings[a] or a not in siblings[b]}
    assert gone == set(), "these no longer import each other: take them off KNOWN_PACKAGE_CYCLES"
    for a, b in KNOWN_PACKAGE_CYCLES:
        siblings[a].discard(b)
        siblings[b].discard(a)
    assert cycles(siblings) == [], "new cycles between packages"


def test_a_function_local_import_back_is_a_cycle(tmp_path):
    shutil.copytree(SRC / "percalign", tmp_path / "percalign")
    archs = tmp_path / "percalign" / "models" / "archs.py"
    archs.write_text(
        archs.read_text() + "\n\ndef _late():\n    from percalign.models import tiny\n"
    )
    assert cycles(import_graph(tmp_path)) == [["percalign.models.archs", "percalign.models.tiny"]]


def test_a_cycle_through_a_package_init_is_found(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from pkg.sub.b import f\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("def f():\n    from .. import g\n")
    (package / "c.py").write_text("from . import sub\n")
    assert cycles(import_graph(tmp_path)) == [["pkg", "pkg.sub.b"]]
    assert package_graph(import_graph(tmp_path))["pkg.c"] == {"pkg.sub"}
