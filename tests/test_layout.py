"""The package's layout (DESIGN.md section 2): Gradio only in the UI, no import cycle.

The import graph is read from the source with ``ast`` (nothing is imported): every ``import``
and ``from ... import`` of a ``workbench`` module, at module level or inside a function, is an
edge. Imports under ``if TYPE_CHECKING:`` never run and are left out. ``from pkg import name``
is an edge to ``pkg.name`` when that is a module, else to ``pkg`` (its ``__init__``). Run this
file as a script to print the cycles: ``python tests/test_layout.py``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "workbench"


def module_name(path: Path) -> str:
    """workbench/models/registry.py -> workbench.models.registry; a package's __init__ -> it."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    """Every module of ``workbench/`` by dotted name."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes under ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                for child in node.body:
                    skipped.update(id(n) for n in ast.walk(child))
    return skipped


def imported_names(path: Path, name: str) -> list[tuple[str, list[str]]]:
    """What ``path`` (module ``name``) imports anywhere in its body, TYPE_CHECKING blocks left
    out: (absolute source module, imported names) per statement; names empty for ``import``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skipped = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            found.append((source, [alias.name for alias in node.names]))
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (itself left out).

    ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``.
    """
    modules = package_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for source, names in imported_names(path, name):
            if source not in modules:
                continue
            if not names:
                targets.add(source)
            for imported in names:
                sub = f"{source}.{imported}"
                targets.add(sub if sub in modules else source)
        graph[name] = targets - {name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def gradio_importers() -> list[str]:
    """Modules outside ``workbench.ui`` that import gradio (anywhere in their body)."""
    found = []
    for name, path in package_modules().items():
        if name == "workbench.ui" or name.startswith("workbench.ui."):
            continue
        sources = [source for source, _ in imported_names(path, name)]
        if any(s == "gradio" or s.startswith("gradio.") for s in sources):
            found.append(name)
    return found


def test_gradio_is_imported_by_the_ui_only():
    assert gradio_importers() == []


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "workbench.models.registry" in graph["workbench.models"]  # the reader works
    assert find_cycles(graph) == []


def _layer(module: str) -> str:
    for layer in ("ui", "cli"):
        if module == f"workbench.{layer}" or module.startswith(f"workbench.{layer}."):
            return layer
    return "library"


# ``python -m workbench.identify`` (the name the issues use) and its like: each only runs the
# command line of the same name in ``workbench.cli``, so it is a command line itself.
COMMAND_ALIASES = {"workbench.identify", "workbench.bench", "workbench.evaluate"}


def test_the_library_imports_neither_the_ui_nor_the_command_lines():
    """Like timm, command lines stand outside the library; the UI sits on the library too.

    ``__main__`` modules (``python -m workbench.data``) and the ``COMMAND_ALIASES`` are command
    lines themselves.
    """
    wrong = sorted(
        (module, target)
        for module, targets in import_graph().items()
        for target in targets
        if not module.endswith(".__main__")
        and module not in COMMAND_ALIASES
        and (_layer(module), _layer(target))
        in {("library", "ui"), ("library", "cli"), ("cli", "ui")}
    )
    assert wrong == []


def test_find_cycles_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]


if __name__ == "__main__":
    cycles = find_cycles(import_graph())
    print(f"{len(import_graph())} modules; gradio outside ui: {gradio_importers() or 'none'}")
    for cycle in cycles:
        print("cycle:", " <-> ".join(cycle))
    print(f"{len(cycles)} cycle(s)")


def test_the_command_aliases_only_forward_to_their_command_line():
    root = Path(__file__).resolve().parents[1]
    for alias in COMMAND_ALIASES:
        name = alias.split(".")[-1]
        source = (root / "workbench" / f"{name}.py").read_text(encoding="utf-8")
        assert f"from workbench.cli.{name} import main" in source
        assert import_graph()[alias] == {f"workbench.cli.{name}"}
