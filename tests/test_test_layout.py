"""How the tests are laid out: shared helpers in helpers.py, shared fixtures in conftest.py."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_test_modules(path: Path) -> list[str]:
    """The test modules a file imports, anywhere in it, as "line: module"."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):  # import tests.test_x
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):  # relative or absolute: test_x, tests.test_x
            names = [node.module or ""]
            if names[0] in ("", "tests"):  # from . import test_x, from tests import test_x
                names += [alias.name for alias in node.names]
        else:
            continue
        found += [
            f"{node.lineno}: {name}"
            for name in names
            if name.removeprefix("tests.").startswith("test_")
        ]
    return found


def test_no_test_module_imports_from_another():
    # A helper two modules need goes to helpers.py, a fixture to conftest.py: importing
    # it from a test module hides where it lives and re-registers that module's fixtures.
    offenders = {
        path.name: imports
        for path in sorted(TESTS.glob("*.py"))
        if (imports := imported_test_modules(path))
    }
    assert offenders == {}
