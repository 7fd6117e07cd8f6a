"""A fake OpenAI-compatible server on loopback, for tests and benchmarks only.

Real HTTP (``ThreadingHTTPServer``) with deterministic toy models, injectable latency and faults
(429/500 with Retry-After, hangs for timeouts, malformed JSON, a body dribbled byte by byte, a stream
cut off), optional llama.cpp ``/props`` and ``/apply-template`` and Ollama ``/api/generate`` routes, and
counters for requests and the most requests in flight at once (a request is in flight until its last
byte is written, so a slowly streamed reply counts for its whole length).
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


VERBALIZED = ("<response><text>Joke 4 one.</text><probability>0.6</probability></response>\n"
              "<response><text>Joke 4 two.</text><probability>0.4</probability></response>")


class AnyStrategy:
    """A toy model every strategy can use: tagged candidates when asked to verbalize (continuing the
    reply's prefix), else 'The answer is 4' piece by piece (so committee's probe and cot-decode's
    branches continue exactly)."""

    scripted = ScriptedModel("The answer is 4")

    def generate(self, ctx: Context, max_tokens: int) -> tuple[list[Step], str]:
        if "<probability>" in ctx.user or "<response>" in ctx.user:
            rest = VERBALIZED[len(ctx.prefix):] if VERBALIZED.startswith(ctx.prefix) else VERBALIZED
            return ReplyModel(lambda _: rest, confidence=0.9).generate(ctx, max_tokens)
        return self.scripted.generate(ctx, max_tokens)


@dataclass
class Fault:
    kind: str  # "status", "hang", "malformed", "body" (200 with `body`), "dribble" (one byte every `seconds`),
    # "cut" (stream stops early)
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    body: dict[str, Any] | None = None


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    chunks: list[bytes]
    delay: float = 0.0
    """Seconds to wait before each chunk after the first."""


class FakeOpenAIServer:
    """Start with ``with FakeOpenAIServer(models) as server:``; ``server.base_url`` ends in /v1."""

    def __init__(self, models: dict[str, Any], latency: float = 0.0, honour_prefix: bool = True,
                 placeholder_logprobs: bool = False, api_key: str | None = None, stream_delay: float = 0.0,
                 max_choices: int | None = None, ignore_stream: bool = False, props: dict[str, Any] | None = None,
                 apply_template: Callable[[list[dict[str, str]]], str] | None = None) -> None:
        self.models = models
        self.stream_delay = stream_delay
        self.max_choices = max_choices
        self.ignore_stream = ignore_stream
        self.props = props
        self.apply_template = apply_template
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

    def enter(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[dict[str, Any], Fault | None, int]:
        entry = {"path": path, "body": body, "start": time.monotonic()}
        with self._lock:
            self.requests.append(entry)
            self.headers_seen.append(headers)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            fault = self.faults.popleft() if self.faults else None
            if fault is None and self.fail_when is not None and self.fail_when(body):
                fault = Fault("status", 500)
            return entry, fault, len(self.requests) - 1

    def leave(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.in_flight -= 1
            entry.setdefault("end", time.monotonic())

    def handle(self, path: str, body: dict[str, Any], headers: dict[str, str], fault: Fault | None,
               call_index: int) -> Reply:
        if self.latency:
            time.sleep(self.latency)
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return _json(401, {"error": {"message": f"invalid api key {headers.get('authorization')}"}})
        if fault is not None:
            if fault.kind == "hang":
                time.sleep(fault.seconds)
            elif fault.kind == "malformed":
                return Reply(200, {"Content-Type": "application/json"}, [b'{"choices": [ {"text": '])
            elif fault.kind == "body":
                return _json(200, fault.body or {})
            elif fault.kind == "status":
                reply = _json(fault.status, fault.body or {"error": {"message": f"injected {fault.status}"}})
                reply.headers.update(fault.headers)
                return reply
        reply = self._route(path, body, call_index)
        if fault is not None and fault.kind == "dribble":
            data = b"".join(reply.chunks)
            return Reply(reply.status, reply.headers, [data[i:i + 1] for i in range(len(data))], fault.seconds)
        if fault is not None and fault.kind == "cut":
            return Reply(reply.status, reply.headers, reply.chunks[:2], reply.delay)
        return reply

    def _route(self, path: str, body: dict[str, Any], call_index: int) -> Reply:
        if path == "/props" and self.props is not None:
            return _json(200, self.props)
        if path == "/apply-template" and self.apply_template is not None:
            return _json(200, {"prompt": self.apply_template(body["messages"])})
        if path == "/api/generate":
            return _json(200, self._ollama(body, call_index))
        if path.endswith("/embeddings"):
            return _json(200, _embeddings(body))
        streamed = bool(body.get("stream")) and not self.ignore_stream
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if path.endswith("/chat/completions"):
            completion = self._chat(body, call_index)
            return _sse(completion, usage, self.stream_delay, chat=True) if streamed else _json(200, completion)
        if path.endswith("/completions"):
            completion = self._raw(body, call_index)
            return _sse(completion, usage, self.stream_delay, chat=False) if streamed else _json(200, completion)
        return _json(404, {"error": {"message": f"no route {path}"}})

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
        n = int(body.get("n") or 1)
        for index in range(min(n, self.max_choices or n)):
            ctx = Context(messages, prefix, float(body.get("temperature") or 0.0), body.get("seed"), call_index + index)
            limit = body.get("max_completion_tokens") or body.get("max_tokens") or 256
            steps, finish = self._model(body).generate(ctx, int(limit))
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

    def _ollama(self, body: dict[str, Any], call_index: int) -> dict[str, Any]:
        """Ollama's native /api/generate (raw: true) reply, from the same toy models."""
        options = body.get("options") or {}
        k = int(body.get("top_logprobs") or 0) if body.get("logprobs") else 0
        completion = self._raw({"model": body["model"], "prompt": body["prompt"], "logprobs": k,
                                "max_tokens": options.get("num_predict") or 16,
                                "temperature": options.get("temperature")}, call_index)
        choice = completion["choices"][0]
        reply: dict[str, Any] = {"model": body["model"], "created_at": "2025-11-20T00:00:00Z",
                                 "response": choice["text"], "done": True, "done_reason": choice["finish_reason"],
                                 "prompt_eval_count": 10, "eval_count": completion["usage"]["completion_tokens"]}
        if k:
            lp = choice["logprobs"]
            reply["logprobs"] = [
                {"token": t, "logprob": v, "bytes": list(t.encode()),
                 "top_logprobs": [{"token": a, "logprob": w, "bytes": list(a.encode())} for a, w in top.items()]}
                for t, v, top in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"])
            ]
        return reply

    def _lp(self, value: float) -> float:
        return 0.0 if self.placeholder_logprobs else value


def _json(status: int, payload: dict[str, Any]) -> Reply:
    return Reply(status, {"Content-Type": "application/json"}, [json.dumps(payload).encode()])


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


def _sse(completion: dict[str, Any], usage: bool, delay: float, chat: bool) -> Reply:
    """A completion as server-sent chunks, one per piece, then the finish reason, usage if asked, [DONE]."""
    kind = "chat.completion.chunk" if chat else "text_completion"
    head = {"id": "fake", "object": kind, "created": 0, "model": completion["model"]}
    choice = completion["choices"][0]
    text = choice["message"]["content"] if chat else choice["text"]
    events = []
    for piece in pieces(text):
        delta = {"delta": {"content": piece}} if chat else {"text": piece}
        events.append({**head, "choices": [{"index": 0, **delta, "finish_reason": None}]})
    end = {"delta": {}} if chat else {"text": ""}
    events.append({**head, "choices": [{"index": 0, **end, "finish_reason": choice["finish_reason"]}]})
    if usage:
        events.append({**head, "choices": [], "usage": completion["usage"]})
    chunks = [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]
    return Reply(200, {"Content-Type": "text/event-stream"}, chunks, delay)


def _make_handler(server: FakeOpenAIServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes

        def log_message(self, *_: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._serve({})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._serve(json.loads(self.rfile.read(length) or b"{}"))

        def _serve(self, body: dict[str, Any]) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            entry, fault, call_index = server.enter(self.path, body, headers)
            try:
                try:
                    reply = server.handle(self.path, body, headers, fault, call_index)
                except KeyError as exc:
                    reply = _json(404, {"error": {"message": f"unknown model {exc}"}})
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                cut = fault is not None and fault.kind == "cut"
                if not cut:
                    self.send_header("Content-Length", str(sum(len(c) for c in reply.chunks)))
                else:
                    self.send_header("Connection", "close")
                self.end_headers()
                for index, chunk in enumerate(reply.chunks):
                    if index and reply.delay:
                        time.sleep(reply.delay)
                    if index == len(reply.chunks) - 1:
                        entry["end"] = time.monotonic()  # before the client can see the reply complete
                    self.wfile.write(chunk)
                    self.wfile.flush()
                if cut:
                    self.close_connection = True
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                server.leave(entry)

    return Handler
