"""Running the ensemble server: bind checks, every ensemble validated before listening, graceful SIGTERM.

uvicorn handles SIGTERM and Ctrl-C: it stops accepting, lets requests in flight finish for up to
``grace_s`` seconds, then exits.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
from pathlib import Path
from typing import Callable, Mapping

from .. import secrets
from ..sinks.console import say
from ..errors import ConfigError
from ..formatting import count
from ..records import RecordWriter
from ..session import Session
from .app import Limits, create_app
from .served import Ensemble, load_ensembles
from .ports import check_port_free


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_key(api_key_env: str | None, host: str, environ: Mapping[str, str]) -> str | None:
    """The key clients must send, read from ``api_key_env``; required to listen beyond loopback."""
    if api_key_env is None:
        if not is_loopback(host):
            raise ConfigError(f"refusing to listen on {host} without a server key: set one in an environment "
                              "variable and pass --api-key-env VAR (clients then send Authorization: Bearer <key>)")
        return None
    key = environ.get(api_key_env, "")
    if not key:
        raise ConfigError(f"--api-key-env {api_key_env}: the variable is not set or empty; set it to the key "
                          "clients must send")
    if len(key) < secrets.MIN_SECRET_LENGTH:
        raise ConfigError(f"--api-key-env {api_key_env}: the key is shorter than {secrets.MIN_SECRET_LENGTH} "
                          "characters; use a longer one")
    secrets.register(key)
    return key


def validate(ensembles: dict[str, Ensemble], warn: Callable[[str], None] | None = None) -> dict[str, Ensemble]:
    """Prepare each ensemble once, so that a broken config or a missing member key is found now: it stops the
    server, or (``warn``: the default named ensembles, where one example may need an extra that is not
    installed) that ensemble is left out with a warning. Returns the ensembles to serve."""
    served: dict[str, Ensemble] = {}
    for name, ensemble in ensembles.items():
        session = Session(ensemble.config, registry=ensemble.registry)
        try:
            session.prepare(ensemble.strategy)
        except ConfigError as exc:
            problem = f"ensemble '{ensemble.name}' ({ensemble.path}): {exc.template}"
            if warn is None:
                raise ConfigError(problem) from None
            warn(f"{problem}; not served")
            continue
        finally:
            session.close()
        served[name] = ensemble
    if not served:
        raise ConfigError("no ensemble can be served; fix the files named above, or pass --ensembles FILE.yaml")
    return served


def serve_ensembles(path: Path | None, host: str, port: int, limits: Limits, api_key_env: str | None,
                    grace_s: float, environ: Mapping[str, str] | None = None) -> None:
    import uvicorn

    environ = os.environ if environ is None else environ
    limits.api_key = server_key(api_key_env, host, environ)
    def warn(message: str) -> None:
        say(f"warning: {message}", style="yellow")

    with RecordWriter(limits.log_path, flag="--log"):  # a log that cannot be written stops the server now
        pass
    ensembles = validate(load_ensembles(path, environ, warn=warn), warn if path is None else None)
    check_port_free(host, port)
    app = create_app(ensembles, limits)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", log_config=None,
                            timeout_graceful_shutdown=max(1, round(grace_s)), server_header=False)
    server = uvicorn.Server(config)

    say(f"serving {count(len(ensembles), 'ensemble')} on http://{host}:{port}/v1: {', '.join(ensembles)}", style="")
    # uvicorn re-raises the SIGTERM or SIGINT (Ctrl-C) it caught once it has stopped gracefully: let that
    # end the process quietly, with exit 0, rather than as an interrupted batch run
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        asyncio.run(server.serve())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    say("stopped", style="")
