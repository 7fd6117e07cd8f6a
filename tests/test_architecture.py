"""The layering the design promises, checked on the source: strategies never reach a backend, the CLI
holds no pipeline, and configuration imports no provider."""

from __future__ import annotations

import ast

import pytest
from conftest import REPO

PACKAGE = REPO / "ensemble_cli"


def imports(path) -> set[str]:
    """Every module a file imports, relative imports resolved against its package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "strategies").glob("*.py")), ids=lambda p: p.name)
def test_strategies_never_import_a_backend_or_a_front_end(path):
    forbidden = ("ensemble_cli.providers.local", "ensemble_cli.providers.llama_engine",
                 "ensemble_cli.providers.openai_compat", "ensemble_cli.cli", "ensemble_cli.sinks", "rich", "typer")
    found = {name for name in imports(path) if name.startswith(forbidden)}
    assert not found, f"{path.name} imports {sorted(found)}"
    source = path.read_text(encoding="utf-8")
    assert "LocalProvider" not in source and "OpenAICompatibleProvider" not in source


def test_config_imports_no_provider():
    assert not {name for name in imports(PACKAGE / "config.py") if name.startswith("ensemble_cli.providers")}


@pytest.mark.parametrize("path", sorted((PACKAGE / "cli").glob("*.py")), ids=lambda p: p.name)
def test_the_cli_runs_no_strategy_itself(path):
    """Commands build a Session (through cli/common.py) and never a strategy or a provider directly."""
    found = {name for name in imports(path)
             if name.startswith(("ensemble_cli.strategies.", "ensemble_cli.providers.registry", "ensemble_cli.members"))}
    assert not found, f"{path.name} imports {sorted(found)}"
