"""Whether the server can listen where it is told to, found before any model loads."""

from __future__ import annotations

import errno
import socket

from ..errors import ConfigError


def check_port_free(host: str, port: int) -> None:
    """A taken address is a usage error (pick another ``--port``), found before the model loads."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"{host}:{port} is already in use; pass another --port") from None
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); check --host and --port") from None
