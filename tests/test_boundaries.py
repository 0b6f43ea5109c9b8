"""The client side stays installable alone: the client SDK and the file format import nothing of the
service, and the service's command says what to install when the ``server`` extra is missing.

A vendor embeds ``offline_service.client`` with the base install (PyNaCl only, see pyproject.toml);
one import of the engine, the store or Starlette from there would break every such app.
tests/client/test_install.py proves it with a real install; these checks are the fast version.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from offline_service import cli

PACKAGE = Path(__file__).resolve().parents[1] / "offline_service"
# The client side, and the kernel modules it may use (whose own imports must stay as narrow).
CLIENT_SIDE = ("client", "fileformat")
ALLOWED_KERNEL = ("errors", "next_steps", "ids", "_b64", "_files")
ALLOWED_PACKAGES = {f"offline_service.{name}" for name in CLIENT_SIDE + ALLOWED_KERNEL}
# The base install's only dependency (pyproject.toml): not even `cryptography`, which it does not have.
ALLOWED_THIRD_PARTY = {"nacl"}
SERVER_MODULES = ("starlette", "uvicorn", "jinja2", "multipart", "python_multipart", "sqlite3")


def _client_side_files() -> list[Path]:
    files = [PACKAGE / "__init__.py"] + [PACKAGE / f"{name}.py" for name in ALLOWED_KERNEL]
    for name in CLIENT_SIDE:
        files += sorted((PACKAGE / name).rglob("*.py"))
    return files


def _type_checking_only(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` blocks run for the type checker only, never at import."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import that can run, at the top or inside a function."""
    found: list[tuple[int, str]] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if _type_checking_only(node):
            assert isinstance(node, ast.If)
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            # Imports are absolute in this project; a relative one is a finding of its own.
            found.append((node.lineno, "." * node.level + (node.module or "")))
        pending.extend(ast.iter_child_nodes(node))
    return found


def _allowed(module: str) -> bool:
    top = module.split(".")[0]
    if top == "offline_service":
        # Not the bare package either: its lazy names (Engine, SQLiteStore) load the service.
        return any(module == p or module.startswith(p + ".") for p in ALLOWED_PACKAGES)
    if top == "__future__" or top in sys.stdlib_module_names:
        return top != "sqlite3"  # the store's; a client never opens a database
    return top in ALLOWED_THIRD_PARTY


def test_the_client_side_imports_nothing_of_the_service() -> None:
    files = _client_side_files()
    assert len(files) > 10  # the walk found the packages
    bad = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {module}"
        for path in files
        for line, module in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        if not _allowed(module)
    ]
    assert bad == []


@pytest.mark.parametrize(
    "module",
    [
        "offline_service.licensing.engine",  # the engine
        "offline_service.store",  # the store
        "offline_service",  # the bare package: its lazy names load the engine and the store
        "starlette.responses",  # a server dependency
        "cryptography.hazmat",  # not a dependency of the base install
        "sqlite3",  # the database
        ".messages",  # a relative import
    ],
)
def test_the_import_walk_refuses_the_service(module: str) -> None:
    assert not _allowed(module)


@pytest.mark.parametrize(
    "module",
    ["offline_service.errors", "offline_service.fileformat.jws", "nacl.bindings", "json", "__future__"],
)
def test_the_import_walk_allows_the_client_side(module: str) -> None:
    assert _allowed(module)


def test_the_import_walk_skips_type_checking_blocks() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import starlette\nelse:\n    import json\n"
    )
    assert sorted(m for _, m in _imports(tree)) == ["json", "typing"]


def test_importing_the_client_side_loads_no_server_module() -> None:
    """What the walk cannot see (imports by name at run time), a fresh interpreter does."""
    names = [
        "offline_service." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        for name in CLIENT_SIDE
        for path in sorted((PACKAGE / name).rglob("*.py"))
        if path.name != "__main__.py"
    ]
    code = (
        "import importlib, json, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name.removesuffix('.__init__'))\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(json.loads(done.stdout))
    service = {
        m
        for m in loaded
        if m.split(".")[0] in SERVER_MODULES
        or (m.startswith("offline_service.") and not _allowed(m) and m != "offline_service")
    }
    assert service == set()


def test_the_service_command_without_the_server_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.missing_server_modules() == []  # this environment has the extra
    real = importlib.util.find_spec

    def without_uvicorn(name: str, package: str | None = None) -> object:
        return None if name == "uvicorn" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", without_uvicorn)
    assert cli.missing_server_modules() == ["uvicorn"]
    assert cli.main(["--help"]) == 2
    err = capsys.readouterr().err
    assert "uvicorn not installed" in err and "pip install 'offline-service[server]'" in err
    assert "Traceback" not in err
