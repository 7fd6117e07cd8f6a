"""The CLI's error boundary: each error to its exit code and one line; a traceback only on request, keys masked."""

from __future__ import annotations

import pytest

from ensemble_cli import secrets
from ensemble_cli.cli.boundary import Terminated, guarded
from ensemble_cli.errors import AuthError, ConfigError, ProviderError, StrategyError


@pytest.mark.parametrize(("error", "code", "shown"), [
    (ConfigError("bad"), 2, "error: bad"), (AuthError("key"), 3, "error: key"), (ProviderError("down"), 4, "down"),
    (StrategyError("no"), 1, "error: no"), (KeyboardInterrupt(), 130, "interrupted"),
    (Terminated(), 143, "terminated"), (ZeroDivisionError("boom"), 1, "internal error: ZeroDivisionError: boom"),
])
def test_error_boundary_maps_errors_to_exit_codes(error, code, shown, capsys):
    def fail() -> None:
        raise error

    assert guarded(fail) == code
    err = capsys.readouterr().err
    assert err.startswith("ensemble: ") and shown in err and "Traceback" not in err


def test_traceback_flag_prints_a_redacted_traceback(monkeypatch, capsys):
    monkeypatch.setenv("ENSEMBLE_TRACEBACK", "1")
    secrets.register("sk-test-boundary-secret-0001")
    def fail() -> None:
        raise AuthError("rejected: Bearer sk-test-boundary-secret-0001")

    status = guarded(fail)
    err = capsys.readouterr().err
    assert status == 3 and "Traceback" in err
    assert "sk-test-boundary-secret-0001" not in err and secrets.MASK in err
