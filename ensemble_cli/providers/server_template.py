"""Which chat template a raw (prefix) continuation is rendered with, for servers that know their model's.

llama.cpp's ``llama-server`` exposes the model's template at ``GET /props`` (``chat_template``, with
``bos_token`` / ``eos_token``) and renders messages at ``POST /apply-template`` (returns ``prompt``).
llama-cpp-python's server (what ``ensemble serve`` runs) has neither: 404, then client-side ChatML.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import httpx
import openai

from ..calls import Message
from .templates import render_chat_template, render_prompt

Source = Literal["props", "apply-template", "chatml"]


@dataclass(frozen=True)
class ServerTemplate:
    source: Source
    template: str = ""
    bos_token: str = ""
    eos_token: str = ""
    adds_bos: bool = True
    """Whether the server puts the BOS token before a raw prompt itself (``/props`` ``add_bos_token``;
    llama-server, which does not report it, adds it where the model asks for it)."""

    @property
    def label(self) -> str:
        return {
            "props": "server chat template (GET /props, rendered client-side)",
            "apply-template": "server chat template (POST /apply-template)",
            "chatml": "client-side ChatML (the server offers no template)",
        }[self.source]


NOT_OFFERED = (openai.NotFoundError, openai.UnprocessableEntityError, openai.BadRequestError)


def _offered_status(exc: openai.APIStatusError) -> bool:
    return exc.status_code in (404, 405, 501)


async def discover(client: openai.AsyncOpenAI, root_url: str) -> ServerTemplate:
    """Ask the server for its template: ``/props`` first, then ``/apply-template``, else ChatML."""
    try:
        response = await client.get(f"{root_url}/props", cast_to=httpx.Response)
        props = response.json()
        if isinstance(props, dict) and props.get("chat_template"):
            return ServerTemplate("props", str(props["chat_template"]), str(props.get("bos_token") or ""),
                                  str(props.get("eos_token") or ""), bool(props.get("add_bos_token", True)))
    except NOT_OFFERED:
        pass
    except openai.APIStatusError as exc:
        if not _offered_status(exc):
            raise
    except ValueError:  # not JSON: not llama-server's /props
        pass
    probe = {"messages": [{"role": "user", "content": "hi"}]}
    try:
        response = await client.post(f"{root_url}/apply-template", cast_to=httpx.Response, body=probe)
        if isinstance(response.json(), dict) and "prompt" in response.json():
            return ServerTemplate("apply-template")
    except NOT_OFFERED:
        pass
    except openai.APIStatusError as exc:
        if not _offered_status(exc):
            raise
    except ValueError:
        pass
    return ServerTemplate("chatml")


async def render(found: ServerTemplate, client: openai.AsyncOpenAI, root_url: str, messages: Sequence[Message],
                 prefix: str) -> str:
    if found.source == "props":
        return render_chat_template(found.template, messages, prefix, found.bos_token, found.eos_token,
                                    found.adds_bos)
    if found.source == "apply-template":
        response = await client.post(f"{root_url}/apply-template", cast_to=httpx.Response,
                                     body={"messages": [m.as_dict() for m in messages]})
        return str(response.json()["prompt"]) + prefix
    return render_prompt(messages, "chatml", prefix)
