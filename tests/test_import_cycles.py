"""No import cycles among the `gql_api` and `db` modules.

Every import counts, wherever it is written: at the top, inside a function, under
`if TYPE_CHECKING:`. A lazy import only hides a cycle from the interpreter; a maintainer still
cannot read, move or test one module without the other. The modules are read as text (their AST),
not imported, so the test also sees imports that never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gql_api", "db")


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            found[_module_name(root, path)] = path
    return found


def _base(name: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` reads from (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def _resolve(imported: str, modules: dict[str, Path]) -> str | None:
    """The module of ours that `imported` names: itself, or its longest known prefix."""
    parts = imported.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _lazy_module(node: ast.Call) -> str | None:
    """The module named by `strawberry.lazy("pkg.module")`: an import made at schema build."""
    called = node.func
    name = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", None)
    if name == "lazy" and node.args and isinstance(node.args[0], ast.Constant):
        value = node.args[0].value
        return value if isinstance(value, str) else None
    return None


def import_graph(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports, from every import statement in its AST."""
    modules = _modules(root, packages)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [_resolve(alias.name, modules) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _base(name, path, node)
                # `from pkg import x`: an edge to the module pkg.x if there is one, else to pkg.
                targets = [_resolve(f"{base}.{alias.name}", modules) for alias in node.names]
            elif isinstance(node, ast.Call) and (lazy := _lazy_module(node)):
                targets = [_resolve(lazy, modules)]
            else:
                continue
            graph[name].update(t for t in targets if t is not None and t != name)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); components of more than one module, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def _describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    edges = [
        f"    {source} -> {target}"
        for source in component
        for target in sorted(graph[source] & members)
    ]
    return " <-> ".join(component) + "\n" + "\n".join(edges)


def test_the_graph_sees_imports_everywhere(tmp_path: Path) -> None:
    # given: imports at the top, in a function, under TYPE_CHECKING, relative, and lazy
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from . import b\n")
    (package / "a.py").write_text("import pkg.sub.b\n")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg.c import X\n"
        "def f():\n    from ..d import y\n"
    )
    (package / "c.py").write_text("from pkg import a\n")
    (package / "d.py").write_text('import strawberry\nT = strawberry.lazy("pkg.a")\n')

    # when
    graph = import_graph(tmp_path, ("pkg",))

    # then
    assert graph == {
        "pkg": set(),
        "pkg.a": {"pkg.sub.b"},
        "pkg.sub": {"pkg.sub.b"},
        "pkg.sub.b": {"pkg.c", "pkg.d"},
        "pkg.c": {"pkg.a"},
        "pkg.d": {"pkg.a"},
    }
    assert strongly_connected(graph) == [["pkg.a", "pkg.c", "pkg.d", "pkg.sub.b"]]


def test_a_cycle_is_found_with_its_modules() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}

    assert strongly_connected(graph) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    # given
    graph = import_graph()

    # when
    cycles = strongly_connected(graph)

    # then
    assert not cycles, (
        "import cycles (imports in functions and TYPE_CHECKING count):\n"
        + "\n".join(_describe(c, graph) for c in cycles)
    )
