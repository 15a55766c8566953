"""The package's modules import each other without cycles (function-level imports too),
and the folders follow the data path: patch → wrap → extract → record."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "otel_llm_usage"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package modules ``path`` imports, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"  # from otel_llm_usage import semconv
                if submodule in modules:
                    found.add(submodule)
                elif node.module in modules:
                    found.add(node.module)
    return found


def graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: imports_of(path, set(paths)) - {name} for name, path in paths.items()}


def test_no_import_cycles() -> None:
    imports = graph()
    assert imports["otel_llm_usage.record.tracking"] == {"otel_llm_usage.extract.usage"}

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            name, path = stack.pop()
            for target in imports[name]:
                if target == start:
                    return [*path, start]
                if target not in path:
                    stack.append((target, [*path, target]))
        return None

    roots = {"otel_llm_usage"}  # the public API imports from everywhere
    cycles = [cycle for name in imports if name not in roots if (cycle := cycle_from(name))]
    assert cycles == []


def test_extraction_depends_on_no_later_stage() -> None:
    """extract/ reads requests and results: it knows nothing of wrapping or recording."""
    for name, targets in graph().items():
        if name.startswith("otel_llm_usage.extract."):
            later = {t for t in targets if t.split(".")[1:2] in (["patch"], ["wrap"], ["record"])}
            assert later == set(), name
