"""The code's layout: web areas stand alone, and functions stay short enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "clinic_finder"
# The web areas: each a blueprint package that may use the domain and the shared web layer
# (clinic_finder/web), never another area.
AREAS = ("api", "contact", "public", "staff")
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, as an absolute name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = (
        _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    )
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            # "from .. import staff" imports the package itself.
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _area_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == "clinic_finder" and parts[1] in AREAS:
        return parts[1]
    return None


def _python_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*.py") if "__pycache__" not in path.parts)


@pytest.mark.parametrize("area", AREAS)
def test_a_web_area_imports_no_other_area(area):
    crossings = [
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in _python_files(PACKAGE / area)
        for module in _imported_modules(path)
        if _area_of(module) not in (None, area)
    ]
    assert crossings == []


def test_the_domain_and_the_shared_web_layer_import_no_web_area():
    """Only the factory wires the areas in; nothing else may lean on one."""
    outside = [
        path
        for path in _python_files(PACKAGE)
        if path.relative_to(PACKAGE).parts[0] not in AREAS
        and path.name != "__init__.py"
        or path.parent.name == "web"
    ]
    crossings = [
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in outside
        for module in _imported_modules(path)
        if _area_of(module) is not None
    ]
    assert crossings == []


def test_no_function_is_longer_than_sixty_lines():
    long = []
    for path in _python_files(PACKAGE):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(
                        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({lines})"
                    )
    assert long == []
