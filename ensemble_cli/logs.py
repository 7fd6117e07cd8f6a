"""What reaches stderr besides the tool's own lines: nothing, unless ``--verbose`` asks for it.

The tool's own log records (logger ``ensemble``, e.g. the server's warnings) are shown as ``ensemble:
warning: ...`` lines through the stderr console. Every other logger (the openai SDK's retries, httpx,
uvicorn), Python warnings and llama.cpp's own log lines (``llama_context: ...``, ``llama_kv_cache_iswa:
...``, routed through ``llama_log_set``) are dropped, or shown as they are with ``--verbose``.
"""

from __future__ import annotations

import ctypes
import logging
import warnings
from typing import Any

TOOL_LOGGER = "ensemble"
LLAMA_LOGGER = "llama.cpp"
_state: dict[str, Any] = {"verbose": False, "callback": None}


class ConsoleHandler(logging.Handler):
    """The tool's own log records as ``ensemble: LEVEL: message`` lines on the stderr console."""

    def emit(self, record: logging.LogRecord) -> None:
        from .sinks.console import say

        level = record.levelname.lower()
        say(f"{level}: {record.getMessage()}", style="red" if record.levelno >= logging.ERROR else "yellow")


class PlainStderrHandler(logging.StreamHandler):
    """Library log records with ``--verbose``, as ``name: LEVEL: message``."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))


def configure(verbose: bool = False) -> None:
    """Route every log source once per process: the tool's own lines always, the others with ``verbose``."""
    _state["verbose"] = verbose
    tool = logging.getLogger(TOOL_LOGGER)
    tool.handlers = [ConsoleHandler()]
    tool.setLevel(logging.INFO if verbose else logging.WARNING)
    tool.propagate = False
    root = logging.getLogger()
    root.handlers = [PlainStderrHandler() if verbose else logging.NullHandler()]
    root.setLevel(logging.INFO if verbose else logging.CRITICAL)
    logging.captureWarnings(True)  # Python warnings become log records of 'py.warnings', shown only when verbose
    if not verbose:
        warnings.simplefilter("ignore")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "llama-cpp-python"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
        logger.setLevel(logging.INFO if verbose else logging.CRITICAL)


def verbose() -> bool:
    return bool(_state["verbose"])


def route_llama(llama_cpp: Any) -> None:
    """Send llama.cpp's (and ggml's) log lines to the ``llama.cpp`` logger instead of straight to stderr.

    Called before each model load and context creation, since loading llama-cpp-python's own modules
    (its server, another plugin) installs its own callback."""
    callback = _state["callback"]
    if callback is None:
        logger = logging.getLogger(LLAMA_LOGGER)

        def forward(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            if verbose():
                logger.info(text.decode("utf-8", "replace").rstrip("\n"))

        callback = _state["callback"] = llama_cpp.llama_log_callback(forward)  # kept: ctypes must not free it
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
