"""The package's structure: modules import each other in one direction, at the top, and the CLI starts light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from helpers import REPO

PACKAGE = REPO / "generator" / "mlscaffold"
#: Deliberately lazy, for start-up time only: the package's ``__init__`` (PEP 562 ``__getattr__``) and the CLI, whose
#: commands import their engine module when they run. Every other module imports its siblings at the top.
LAZY_BY_DESIGN = {"__init__", "cli"}


def sibling_imports(module: Path) -> tuple[set[str], list[str]]:
    """The mlscaffold modules ``module`` imports at its top level, and any it imports inside a function."""
    tree = ast.parse(module.read_text(encoding="utf-8"))
    top: set[str] = set()
    nested: list[str] = []

    def names(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "mlscaffold":
                return [alias.name for alias in node.names if (PACKAGE / f"{alias.name}.py").exists()]
            if node.module.startswith("mlscaffold."):
                return [node.module.split(".")[1]]
        if isinstance(node, ast.Import):
            return [a.name.split(".")[1] for a in node.names if a.name.startswith("mlscaffold.")]
        return []

    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            top.update(names(node))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)) and names(inner):
                    nested.append(f"{module.stem}.{node.name} imports {', '.join(names(inner))}")
    return top, nested


def graph() -> dict[str, set[str]]:
    return {path.stem: sibling_imports(path)[0] - {path.stem} for path in sorted(PACKAGE.glob("*.py"))}


def test_no_import_cycle_inside_the_package() -> None:
    edges = graph()
    cycles: list[str] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*stack[stack.index(target) :], target]))
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = 2

    for node in edges:
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_import_graph_is_read_from_the_code() -> None:
    """The graph the cycle check walks has the package's real edges (an empty graph would pass vacuously)."""
    edges = graph()
    assert "engine" in edges["update"] and "update" not in edges["engine"]


def test_no_sibling_import_inside_a_function() -> None:
    nested = [
        line for path in sorted(PACKAGE.glob("*.py")) if path.stem not in LAZY_BY_DESIGN
        for line in sibling_imports(path)[1]
    ]  # fmt: skip
    assert nested == []


def test_help_and_version_import_no_renderer_or_validator() -> None:
    code = (
        "import sys\n"
        "from mlscaffold.cli import run\n"
        "for argv in (['--version'], ['--help'], ['update', '--help']):\n"
        "    try:\n"
        "        run(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('copier', 'hera', 'kubernetes_validate', 'jsonschema', 'jinja2')\n"
        "print('HEAVY', sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in done.stdout, done.stdout + done.stderr
