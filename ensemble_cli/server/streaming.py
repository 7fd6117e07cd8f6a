"""Server-sent events for a streamed request: real streaming where the strategy writes as it goes.

A strategy whose spec names the event that carries its answer as it is written (``streams``: the
committee's ``TokenChosen``, moa's ``StreamDelta``) is sent piece by piece (the committee never emits a
stop string); the others send the answer once it is decided, with SSE comment keep-alives while they
work so that clients and proxies do not time out.
Then the finishing chunk (with the ``ensemble`` extension), a usage chunk when asked, and ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

from ..events import StreamDelta, TokenChosen
from ..records import output_text
from . import responses
from .requests import Plan
from .runner import Finished, Job

KEEP_ALIVE = ": keep-alive\n\n"
DONE = "data: [DONE]\n\n"


def data(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def events(job: Job, plan: Plan, model: str, request_id: str, created: int,
                 keep_alive_s: float) -> AsyncIterator[str]:
    """The SSE body of one streamed request; cancelling it (a client gone) cancels the run."""
    live = job.spec.streams  # the event that carries the answer as it is written, if it streams
    sent = ""
    task = asyncio.create_task(job.run())
    try:
        yield data(responses.chunk(request_id, model, created, {"role": "assistant", "content": ""}))
        while True:
            try:
                event = await asyncio.wait_for(job.events.get(), keep_alive_s)
            except TimeoutError:
                yield KEEP_ALIVE
                continue
            if isinstance(event, Finished):
                for piece in _finish(event, sent, plan, model, request_id, created):
                    yield piece
                return
            if live is None or not isinstance(event, live) or not isinstance(event, (TokenChosen, StreamDelta)) \
                    or not event.text:
                continue
            sent += event.text
            logprobs = None
            if plan.logprobs and isinstance(event, TokenChosen):
                logprobs = {"content": [responses.entry(event.text, event.logprob)], "refusal": None}
            yield data(responses.chunk(request_id, model, created, {"content": event.text}, logprobs=logprobs))
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _finish(finished: Finished, sent: str, plan: Plan, model: str, request_id: str,
            created: int) -> list[str]:
    if finished.error is not None:
        return [data(finished.error.body()), DONE]
    record = finished.record
    pieces = []
    final = output_text(record.get("output"))
    rest = final[len(sent):] if final.startswith(sent) else ""  # what did not stream (all of it, where nothing did)
    if rest:
        pieces.append(data(responses.chunk(request_id, model, created, {"content": rest})))
    last = responses.chunk(request_id, model, created, {}, finish=responses.finish_reason(record))
    last["ensemble"] = responses.extension(record, request_id)
    pieces.append(data(last))
    if plan.include_usage:
        pieces.append(data(responses.usage_chunk(record, request_id, model, created)))
    pieces.append(DONE)
    return pieces

