"""`ensemble serve`: the embedded model as an OpenAI-compatible server on 127.0.0.1 (llama_cpp.server)."""

from typing import Annotated

import typer

from ..errors import ConfigError
from ..providers.llama_engine import resolve_model_path
from .boundary import error_boundary


def serve(
    model: Annotated[str, typer.Option("--model", "-m", help="'smollm2' (embedded) or a path to a GGUF.")] = "smollm2",
    host: Annotated[str, typer.Option(help="Address to listen on; keep it on loopback unless you mean otherwise.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    n_ctx: Annotated[int, typer.Option("--n-ctx", min=256, help="Context size in tokens.")] = 4096,
    alias: Annotated[str, typer.Option(help="Model name clients use.")] = "smollm2",
) -> None:
    """Serve a local model over the OpenAI API (chat and raw completions, with logprobs)."""
    with error_boundary():
        path = resolve_model_path(model)
        try:
            import uvicorn
            from llama_cpp.server.app import create_app
            from llama_cpp.server.settings import ModelSettings, ServerSettings
        except ImportError:
            raise ConfigError("serve needs llama-cpp-python[server]: pip install 'ensemble-cli[local]'") from None
        app = create_app(
            server_settings=ServerSettings(host=host, port=port),
            model_settings=[ModelSettings(model=str(path), model_alias=alias, n_ctx=n_ctx, logits_all=True, flash_attn=True,
                                         verbose=False)],
        )
        typer.echo(f"serving {path.name} as '{alias}' on http://{host}:{port}/v1", err=True)
        uvicorn.run(app, host=host, port=port, log_level="warning")
