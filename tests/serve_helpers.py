"""Running the ensemble server in tests: uvicorn in a thread on a free loopback port, and SSE parsing."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import yaml

from ensemble_cli.server import Limits, create_app, load_ensembles


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """``with ServerThread(ensembles, limits) as url:`` serves on 127.0.0.1 until the block ends."""

    def __init__(self, ensembles: dict, limits: Limits | None = None) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(create_app(ensembles, limits), host="127.0.0.1", port=self.port,
                                log_level="warning", timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the ensemble server did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def write_ensembles(directory: Path, configs: dict[str, dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, config in configs.items():
        (directory / f"{name}.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return directory


def serve(directory: Path, configs: dict[str, dict[str, Any]], limits: Limits | None = None,
          environ: dict[str, str] | None = None) -> ServerThread:
    return ServerThread(load_ensembles(write_ensembles(directory, configs), environ or {}), limits)


def sse_events(response: httpx.Response) -> Iterator[str]:
    """Every SSE line of a streamed response that is data or a comment, in order (blank lines dropped)."""
    for line in response.iter_lines():
        if line:
            yield line


def sse_payloads(lines: list[str]) -> list[Any]:
    return [json.loads(line[len("data: "):]) for line in lines if line.startswith("data: ") and line != "data: [DONE]"]
