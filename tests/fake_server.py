"""A fake OpenAI-compatible server on loopback, for tests and benchmarks only.

Real HTTP (``ThreadingHTTPServer``) with deterministic toy models, injectable latency and faults
(429/500 with Retry-After, hangs for timeouts, malformed JSON), and counters for requests and the
most requests in flight at once.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

END = "<|im_end|>"
PIECE = re.compile(r"\s*\S+")


def pieces(text: str) -> list[str]:
    return PIECE.findall(text)


@dataclass
class Context:
    """What a toy model sees: the messages, the assistant text to continue, and sampling knobs."""

    messages: list[dict[str, str]]
    prefix: str
    temperature: float
    seed: int | None
    call_index: int

    @property
    def system(self) -> str:
        return next((m["content"] for m in self.messages if m["role"] == "system"), "")

    @property
    def user(self) -> str:
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")


Step = tuple[str, float, list[tuple[str, float]]]
"""One generated token: text, logprob, top alternatives (text, logprob) best first."""


class ScriptedModel:
    """Says ``script`` piece by piece: position i (counted in pieces of the prefix) emits piece i.

    The chosen piece gets probability ``confidence``; the alternatives share the rest. After the
    script it emits the end token. Members with different scripts disagree where the scripts differ.
    """

    def __init__(self, script: str, confidence: float = 0.9, alternatives: tuple[str, ...] = (" maybe", " perhaps", " so")):
        self.script = pieces(script)
        self.confidence = confidence
        self.alternatives = alternatives

    def next(self, position: int) -> Step:
        chosen = self.script[position] if position < len(self.script) else END
        rest = [a for a in self.alternatives if a != chosen] + ([END] if chosen != END else [])
        rest_lp = math.log((1 - self.confidence) / len(rest))
        top = [(chosen, math.log(self.confidence))] + [(a, rest_lp) for a in rest]
        return chosen, math.log(self.confidence), top

    def generate(self, ctx: Context, max_tokens: int) -> tuple[list[Step], str]:
        position = len(pieces(ctx.prefix))
        steps: list[Step] = []
        for _ in range(max_tokens):
            step = self.next(position)
            if step[0] == END:
                return steps, "stop"
            steps.append(step)
            position += 1
        return steps, "length"


class ReplyModel:
    """Answers with ``reply(ctx)`` as whole pieces, each with probability ``confidence``."""

    def __init__(self, reply: Callable[[Context], str], confidence: float = 0.8):
        self.reply = reply
        self.confidence = confidence

    def generate(self, ctx: Context, max_tokens: int) -> tuple[list[Step], str]:
        words = pieces(self.reply(ctx))
        lp = math.log(self.confidence)
        alt = math.log((1 - self.confidence) / 2)
        steps = [(w, lp, [(w, lp), (" um", alt), (" er", alt)]) for w in words[:max_tokens]]
        return steps, "stop" if len(words) <= max_tokens else "length"


@dataclass
class Fault:
    kind: str  # "status", "hang", "malformed"
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


class FakeOpenAIServer:
    """Start with ``with FakeOpenAIServer(models) as server:``; ``server.base_url`` ends in /v1."""

    def __init__(self, models: dict[str, Any], latency: float = 0.0, honour_prefix: bool = True,
                 placeholder_logprobs: bool = False, api_key: str | None = None) -> None:
        self.models = models
        self.latency = latency
        self.honour_prefix = honour_prefix
        self.placeholder_logprobs = placeholder_logprobs
        self.api_key = api_key
        self.faults: deque[Fault] = deque()
        self.fail_when: Callable[[dict[str, Any]], bool] | None = None
        self.requests: list[dict[str, Any]] = []
        self.headers_seen: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> "FakeOpenAIServer":
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def calls(self) -> int:
        return len(self.requests)

    def reset_counters(self) -> None:
        with self._lock:
            self.requests.clear()
            self.max_in_flight = 0

    def handle(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        entry = {"path": path, "body": body, "start": time.monotonic()}
        with self._lock:
            self.requests.append(entry)
            self.headers_seen.append(headers)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            fault = self.faults.popleft() if self.faults else None
            if fault is None and self.fail_when is not None and self.fail_when(body):
                fault = Fault("status", 500)
            call_index = len(self.requests) - 1
        try:
            if self.latency:
                time.sleep(self.latency)
            if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
                return _json(401, {"error": {"message": "invalid api key"}})
            if fault is not None:
                if fault.kind == "hang":
                    time.sleep(fault.seconds)
                elif fault.kind == "malformed":
                    return 200, {"Content-Type": "application/json"}, b'{"choices": [ {"text": '
                elif fault.kind == "status":
                    status, payload, extra = _json(fault.status, {"error": {"message": f"injected {fault.status}"}})
                    return status, {**payload, **fault.headers}, extra
            if path.endswith("/embeddings"):
                return _json(200, _embeddings(body))
            if path.endswith("/chat/completions") and body.get("stream"):
                return _sse(self._chat(body, call_index))
            if path.endswith("/chat/completions"):
                return _json(200, self._chat(body, call_index))
            if path.endswith("/completions"):
                return _json(200, self._raw(body, call_index))
            return _json(404, {"error": {"message": f"no route {path}"}})
        finally:
            with self._lock:
                self.in_flight -= 1
                entry["end"] = time.monotonic()

    def _model(self, body: dict[str, Any]):
        name = body.get("model")
        if name not in self.models:
            raise KeyError(name)
        return self.models[name]

    def _chat(self, body: dict[str, Any], call_index: int) -> dict[str, Any]:
        messages = list(body["messages"])
        prefix = ""
        if messages and messages[-1]["role"] == "assistant":
            last = messages.pop()
            continues = last.get("prefix") or body.get("continue_final_message")
            prefix = last["content"] if continues and self.honour_prefix else ""
        want_top = int(body.get("top_logprobs") or 0) if body.get("logprobs") else 0
        choices = []
        for index in range(int(body.get("n") or 1)):
            ctx = Context(messages, prefix, float(body.get("temperature") or 0.0), body.get("seed"), call_index + index)
            steps, finish = self._model(body).generate(ctx, int(body.get("max_tokens") or 256))
            choice: dict[str, Any] = {
                "index": index,
                "message": {"role": "assistant", "content": "".join(s[0] for s in steps)},
                "finish_reason": finish,
            }
            if body.get("logprobs"):
                choice["logprobs"] = {"content": [
                    {"token": text, "logprob": self._lp(lp), "bytes": None,
                     "top_logprobs": [{"token": t, "logprob": self._lp(v), "bytes": None} for t, v in top[:want_top]]}
                    for text, lp, top in steps
                ]}
            choices.append(choice)
        return {"id": "fake", "object": "chat.completion", "created": 0, "model": body["model"], "choices": choices,
                "usage": {"prompt_tokens": 10, "completion_tokens": sum(len(c["message"]["content"].split()) for c in choices),
                          "total_tokens": 0}}

    def _raw(self, body: dict[str, Any], call_index: int) -> dict[str, Any]:
        prompt: str = body["prompt"]
        marker = "<|im_start|>assistant\n"
        if marker in prompt:
            head, _, prefix = prompt.rpartition(marker)
            messages = [
                {"role": m.group(1), "content": m.group(2)}
                for m in re.finditer(r"<\|im_start\|>(\w+)\n(.*?)<\|im_end\|>", head, re.S)
            ]
        else:  # a raw question-answer prompt: the answer so far follows the last "A:"
            head, _, prefix = prompt.rpartition("A:")
            messages = [{"role": "user", "content": head}]
        ctx = Context(messages, prefix, float(body.get("temperature") or 0.0), body.get("seed"), call_index)
        steps, finish = self._model(body).generate(ctx, int(body.get("max_tokens") or 16))
        k = int(body.get("logprobs") or 0)
        choice: dict[str, Any] = {"index": 0, "text": "".join(s[0] for s in steps), "finish_reason": finish}
        if k:
            choice["logprobs"] = {
                "tokens": [s[0] for s in steps],
                "token_logprobs": [self._lp(s[1]) for s in steps],
                "top_logprobs": [{t: self._lp(v) for t, v in s[2][:k]} for s in steps],
                "text_offset": [],
            }
        return {"id": "fake", "object": "text_completion", "created": 0, "model": body["model"], "choices": [choice],
                "usage": {"prompt_tokens": 10, "completion_tokens": len(steps), "total_tokens": 0}}

    def _lp(self, value: float) -> float:
        return 0.0 if self.placeholder_logprobs else value


def _json(status: int, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """Deterministic bag-of-words vectors: texts sharing words point the same way."""
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    data = []
    for index, text in enumerate(texts):
        vector = [0.0] * 16
        for word in text.lower().split():
            vector[sum(map(ord, word)) % 16] += 1.0
        data.append({"object": "embedding", "index": index, "embedding": vector})
    return {"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 0, "total_tokens": 0}}


def _sse(completion: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """A completion as server-sent chunks, one per piece, then [DONE]."""
    events = []
    for piece in pieces(completion["choices"][0]["message"]["content"]):
        chunk = {"id": "fake", "object": "chat.completion.chunk", "created": 0, "model": completion["model"],
                 "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        events.append(f"data: {json.dumps(chunk)}\n\n")
    done = {"id": "fake", "object": "chat.completion.chunk", "created": 0, "model": completion["model"],
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    events.append(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n")
    return 200, {"Content-Type": "text/event-stream"}, "".join(events).encode()


def _make_handler(server: FakeOpenAIServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes

        def log_message(self, *_: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                status, out_headers, payload = server.handle(self.path, body, headers)
            except KeyError as exc:
                status, out_headers, payload = _json(404, {"error": {"message": f"unknown model {exc}"}})
            try:
                self.send_response(status)
                for key, value in out_headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler
