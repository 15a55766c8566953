"""The package's modules import each other without cycles (function-level imports too)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "otel_llm_usage"


def imports_of(path: Path) -> set[str]:
    """The package modules ``path`` imports, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("otel_llm_usage."):
            found.add(node.module.split(".")[1])  # type: ignore[union-attr]
    return found


def test_no_import_cycles() -> None:
    modules = {path.stem: path for path in PACKAGE.glob("*.py")}
    graph = {name: imports_of(path) & modules.keys() for name, path in modules.items()}
    assert graph["tracking"] == {"usage"}

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            name, path = stack.pop()
            for target in graph[name]:
                if target == start:
                    return [*path, start]
                if target not in path:
                    stack.append((target, [*path, target]))
        return None

    cycles = [cycle for name in graph if name != "__init__" if (cycle := cycle_from(name))]
    assert cycles == []
