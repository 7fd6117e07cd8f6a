"""`ensemble serve`: every ensemble as a model over the OpenAI API; `--raw` serves the embedded model itself.

The ensemble server lives in ``ensemble_cli.server``; this module parses flags and hands over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ConfigError


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
    def _props() -> dict[str, object]:
        return props


def serve_raw(model: str, host: str, port: int, n_ctx: int, alias: str) -> None:
    """The raw model over the OpenAI API (chat and raw completions, with logprobs)."""
    from ..providers.llama_engine import resolve_model_path
    from ..server.ports import check_port_free

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
    import llama_cpp

    from ..logs import route_llama
    from ..sinks.console import say

    route_llama(llama_cpp)  # llama-cpp-python's server installed its own log callback
    say(f"serving {path.name} as '{alias}' on http://{host}:{port}/v1", style="")
    uvicorn.run(app, host=host, port=port, log_level="warning", log_config=None)


HELP = (
    "Serve ensembles over the OpenAI API: each run config (default: the example configs) is a model.\n\n"
    "POST /v1/chat/completions with \"model\": NAME runs that ensemble (streamed with \"stream\": true), "
    "\"model\": NAME@PROVIDER/MODEL runs it switched to a provider the server has a key for (or a local model "
    "it lists); "
    "GET /v1/models lists them; GET /health says whether the server is up. Binds 127.0.0.1; any other address "
    "needs a server key (--api-key-env).\n\n"
    "`ensemble serve --raw` serves the raw embedded model instead (llama-cpp-python's server: chat and raw "
    "completions with logprobs)."
)


def serve(
    raw: Annotated[bool, typer.Option("--raw", help="Serve the raw model (no ensemble): chat and raw completions with logprobs.")] = False,
    ensembles: Annotated[Optional[Path], typer.Option("--ensembles", help="A run config YAML or a directory of them; each file is a model named after its stem. Default: the example configs.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on; anything but loopback needs --api-key-env.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
    api_key_env: Annotated[Optional[str], typer.Option("--api-key-env", help="Environment variable holding the key clients must send as 'Authorization: Bearer KEY'.")] = None,
    log: Annotated[Optional[Path], typer.Option("--log", help="Append one JSONL record per request (the CLI's record schema plus request_id).")] = None,
    max_body: Annotated[int, typer.Option("--max-body", min=1024, help="Largest request body in bytes (413 beyond).")] = 1_000_000,
    deadline: Annotated[float, typer.Option("--deadline", min=0.1, help="Seconds a request may run (504 beyond).")] = 600.0,
    queue: Annotated[int, typer.Option("--queue", min=1, help="Requests admitted at once; one more gets 429 with Retry-After.")] = 64,
    grace: Annotated[float, typer.Option("--grace", min=0.0, help="On SIGTERM or Ctrl-C, seconds to let requests in flight finish.")] = 30.0,
    model: Annotated[str, typer.Option("--model", "-m", help="--raw: 'smollm2' (embedded) or a path to a GGUF.")] = "smollm2",
    n_ctx: Annotated[int, typer.Option("--n-ctx", min=256, help="--raw: context size in tokens.")] = 4096,
    alias: Annotated[str, typer.Option(help="--raw: model name clients use.")] = "smollm2",
) -> None:
    if raw:
        serve_raw(model, host, port, n_ctx, alias)
        return
    from ..server.app import Limits
    from ..server.serve import serve_ensembles

    limits = Limits(max_body=max_body, deadline_s=deadline, queue=queue,
                    log_path=str(log) if log is not None else None)
    serve_ensembles(ensembles, host, port, limits, api_key_env, grace)
