"""`ensemble serve --raw`: the embedded model as an OpenAI-compatible server on 127.0.0.1 (llama_cpp.server)."""

from __future__ import annotations

import errno
import socket
from typing import Annotated

import typer

from ..errors import ConfigError
from ..providers.llama_engine import resolve_model_path
from .boundary import error_boundary


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


def add_props(app, path) -> None:
    """``GET /props`` as llama.cpp's ``llama-server`` answers it (the model's chat template and special
    tokens), so that clients rendering raw prompts use the model's own template, as in-process."""
    import llama_cpp

    vocab = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    props = {
        "chat_template": vocab.metadata.get("tokenizer.chat_template", ""),
        "bos_token": vocab.detokenize([vocab.token_bos()], special=True).decode("utf-8", "replace"),
        "eos_token": vocab.detokenize([vocab.token_eos()], special=True).decode("utf-8", "replace"),
        "add_bos_token": bool(llama_cpp.llama_vocab_get_add_bos(vocab._model.vocab)),
    }

    @app.get("/props")
    def _props() -> dict[str, str]:
        return props


def serve_raw(model: str, host: str, port: int, n_ctx: int, alias: str) -> None:
    """The raw model over the OpenAI API (chat and raw completions, with logprobs)."""
    path = resolve_model_path(model)
    check_port_free(host, port)
    try:
        import uvicorn
        from llama_cpp.server.app import create_app
        from llama_cpp.server.settings import ModelSettings, ServerSettings
    except ImportError:
        raise ConfigError("serve needs llama-cpp-python[server]: pip install 'ensemble-cli[local]'") from None
    # interrupt_requests=False: a new request waits its turn instead of cutting off a response still streaming
    app = create_app(
        server_settings=ServerSettings(host=host, port=port, interrupt_requests=False),
        model_settings=[ModelSettings(model=str(path), model_alias=alias, n_ctx=n_ctx, logits_all=True,
                                      flash_attn=True, verbose=False)],
    )
    add_props(app, path)
    typer.echo(f"serving {path.name} as '{alias}' on http://{host}:{port}/v1", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def serve(
    raw: Annotated[bool, typer.Option("--raw", help="Serve the raw model (no ensemble): chat and raw completions with logprobs.")] = False,
    model: Annotated[str, typer.Option("--model", "-m", help="'smollm2' (embedded) or a path to a GGUF.")] = "smollm2",
    host: Annotated[str, typer.Option(help="Address to listen on; keep it on loopback unless you mean otherwise.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    n_ctx: Annotated[int, typer.Option("--n-ctx", min=256, help="Context size in tokens.")] = 4096,
    alias: Annotated[str, typer.Option(help="Model name clients use.")] = "smollm2",
) -> None:
    """Serve over the OpenAI API; --raw serves the embedded model itself."""
    with error_boundary():
        if not raw:
            raise ConfigError("serving ensembles is not built yet; use `ensemble serve --raw` for the raw model")
        serve_raw(model, host, port, n_ctx, alias)
