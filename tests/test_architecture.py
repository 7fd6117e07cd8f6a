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


# What a strategy says about itself (its spec) and the recount of written records call no model.
RUNS_NO_MODEL = ("ensemble_cli.strategies.spec", "ensemble_cli.strategies.vote_recount")


@pytest.mark.parametrize("path", sorted((PACKAGE / "cli").glob("*.py")), ids=lambda p: p.name)
def test_the_cli_runs_no_strategy_itself(path):
    """Commands build a Session (through cli/common.py) and never a strategy or a provider directly."""
    found = {name for name in imports(path)
             if name.startswith(("ensemble_cli.strategies.", "ensemble_cli.providers.registry", "ensemble_cli.members"))
             and not name.startswith(RUNS_NO_MODEL)}
    assert not found, f"{path.name} imports {sorted(found)}"


def test_the_server_imports_nothing_from_the_cli():
    for path in sorted((PACKAGE / "server").glob("*.py")):
        found = {name for name in imports(path) if name.startswith("ensemble_cli.cli")}
        assert not found, f"server/{path.name} imports {sorted(found)}"


@pytest.mark.parametrize("name", ["inputs.py", "cache.py", "usage.py", "calls.py", "decoding.py", "records.py"])
def test_the_core_modules_import_no_provider(name):
    """The provider protocol (``providers/base.py``) is allowed: it is a type, not a backend."""
    found = {module for module in imports(PACKAGE / name)
             if module.startswith(("ensemble_cli.providers", "ensemble_cli.cli", "ensemble_cli.server"))
             and not module.startswith("ensemble_cli.providers.base")}
    assert not found, f"{name} imports {sorted(found)}"


def test_the_prefix_decoder_lives_beside_the_protocol_not_in_a_backend():
    assert "class PrefixDecoder" in (PACKAGE / "decoding.py").read_text(encoding="utf-8")
    for path in sorted((PACKAGE / "providers").glob("*.py")):
        assert "class PrefixDecoder" not in path.read_text(encoding="utf-8"), path.name


def test_the_metered_provider_forwards_nothing_it_does_not_declare():
    """A wrapper with ``__getattr__`` hides which capabilities it really has; the protocol says them all."""
    tree = ast.parse((PACKAGE / "providers" / "metered.py").read_text(encoding="utf-8"))
    methods = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert "__getattr__" not in methods


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_probes_a_provider_for_a_capability(path):
    """Capabilities are protocol methods (``reproducible()``, ``decoder()``), never ``getattr`` guesses."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr"):
            target = node.args[0] if node.args else None
            text = ast.unparse(target) if target is not None else ""
            assert "provider" not in text.lower(), f"{path.name}: {ast.unparse(node)}"
