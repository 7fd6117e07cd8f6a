"""Server-sent events for a streamed request: real streaming where the strategy writes as it goes.

The committee sends each token as the committee chooses it (``TokenChosen``); MoA sends the aggregator's
text as it is written (``StreamDelta``); vote, cot-decode and verbalize send the answer once it is
decided, with SSE comment keep-alives while they work so that clients and proxies do not time out.
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
LIVE = {"committee": TokenChosen, "moa": StreamDelta}
"""The strategies whose answer streams as it is written, and the event that carries it."""


def data(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


class StopGate:
    """Holds back streamed text that may be the start of a stop string, so that a stop never leaks."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.sent = ""
        self.held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        pending = self.held + text
        for stop in self.stops:
            if stop in pending:
                self.stopped = True
                out, self.held = pending[: pending.index(stop)], ""
                self.sent += out
                return out
        keep = max((k for s in self.stops for k in range(1, len(s)) if pending.endswith(s[:k])), default=0)
        out, self.held = (pending[:-keep], pending[-keep:]) if keep else (pending, "")
        self.sent += out
        return out

    def rest(self, final: str) -> str:
        """What is left to send of the final answer (the whole of it when the stream took another path)."""
        return final[len(self.sent):] if final.startswith(self.sent) else ""


async def events(job: Job, plan: Plan, model: str, request_id: str, created: int,
                 keep_alive_s: float) -> AsyncIterator[str]:
    """The SSE body of one streamed request; cancelling it (a client gone) cancels the run."""
    strategy = job.ensemble.strategy
    live = LIVE.get(strategy)
    gate = StopGate(list(job.session.config.committee.stop) if strategy == "committee" else [])
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
                for piece in _finish(event, gate, plan, model, request_id, created):
                    yield piece
                return
            if not isinstance(event, (TokenChosen, StreamDelta)) or not isinstance(event, live or ()) or not event.text:
                continue
            text = gate.feed(event.text)
            if not text:
                continue
            logprobs = None
            if plan.logprobs and isinstance(event, TokenChosen):
                logprobs = {"content": [{"token": event.text, "logprob": event.logprob,
                                         "bytes": list(event.text.encode("utf-8")), "top_logprobs": []}],
                            "refusal": None}
            yield data(responses.chunk(request_id, model, created, {"content": text}, logprobs=logprobs))
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _finish(finished: Finished, gate: StopGate, plan: Plan, model: str, request_id: str,
            created: int) -> list[str]:
    if finished.error is not None:
        return [data(finished.error.body()), DONE]
    record = finished.record
    pieces = []
    rest = gate.rest(output_text(record.get("output")))
    if rest:
        pieces.append(data(responses.chunk(request_id, model, created, {"content": rest})))
    last = responses.chunk(request_id, model, created, {}, finish=responses.finish_reason(record))
    last["ensemble"] = responses.extension(record, request_id)
    pieces.append(data(last))
    if plan.include_usage:
        pieces.append(data(responses.usage_chunk(record, request_id, model, created)))
    pieces.append(DONE)
    return pieces
