"""The FastAPI app: every ensemble as a model behind ``/v1/models`` and ``/v1/chat/completions``.

Limits are checked in order, before any member is called: the server key (401), the body size (413),
the queue of admitted requests (429 with ``Retry-After``), the request itself (400). Every error is an
OpenAI-style error object with a redacted message; an unexpected exception is one line, never a
stack trace. ``GET /health`` needs no key and says only whether the server is up and how busy.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Awaitable, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import catalog
from ..inputs import json_problem
from ..records import SCHEMA_VERSION, RecordWriter
from . import responses, streaming
from ..routing import Gate, embedded_models
from .routes import Models
from .served import Ensemble
from .errors import ApiError, error_body
from .requests import parse_request, plan
from .runner import Finished, Job
from ..formatting import count

log = logging.getLogger("ensemble.serve")
T = TypeVar("T")
RETRY_AFTER_S = 1


@dataclass
class Limits:
    """What the server allows; the CLI's flags fill it."""

    api_key: str | None = None
    max_body: int = 1_000_000
    deadline_s: float = 600.0
    queue: int = 64
    """Requests admitted at once (running or waiting on members); one more is a 429."""
    keep_alive_s: float = 10.0
    log_path: str | None = None


class Admission:
    """Counts admitted requests; refuses one past the limit instead of queueing without bound."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self.served = 0

    def enter(self) -> None:
        if self.active >= self.limit:
            raise ApiError(429, f"the server is busy ({count(self.active, 'request')} in progress, at most {self.limit}); "
                           f"retry in {RETRY_AFTER_S} s", code="queue_full",
                           headers={"Retry-After": str(RETRY_AFTER_S)})
        self.active += 1

    def leave(self) -> None:
        self.active -= 1
        self.served += 1


async def disconnected(request: Request) -> None:
    """Returns once the client has gone away (the request body is read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def until_gone(work: Awaitable[T], request: Request) -> T:
    """``work``'s result; if the client goes away first (it timed out, or closed the connection), the work
    is cancelled at once, so that no call is made for nobody, and the request ends."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            raise ClientGone()
        return task.result()
    finally:
        for pending in (task, gone):
            if not pending.done():
                pending.cancel()
        await asyncio.gather(task, gone, return_exceptions=True)


class ClientGone(Exception):
    """The client of a non-streamed request went away before its answer; nobody reads the response."""


def create_app(ensembles: dict[str, Ensemble], limits: Limits | None = None, gate: Gate | None = None) -> FastAPI:
    """The app serving ``ensembles``; ``gate`` says what routed names may reach (default: the providers whose
    key is set in the ensembles' environment, and the embedded model)."""
    limits = limits or Limits()
    if gate is None:
        environ = next(iter(ensembles.values())).environ if ensembles else {}
        gate = Gate(environ, embedded_models())
    served = Models(ensembles, gate)
    admission = Admission(limits.queue)
    writer = RecordWriter(limits.log_path, flag="--log")
    running: set[asyncio.Task[Any]] = set()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        with writer:
            try:
                yield
            finally:  # runs still going past the grace period are cancelled, and logged as such, first
                for task in list(running):
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)
                for ensemble in ensembles.values():
                    if ensemble.registry is not None:
                        await ensemble.registry.aclose()

    app = FastAPI(title="ensemble serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    def write_log(entry: dict[str, Any]) -> None:
        try:
            writer.write(entry)
        except OSError as exc:  # a full disk must not fail the response that is already computed
            log.warning("cannot append to the request log: %s", exc.strerror)

    def rejected(request_id: str, error: ApiError, model: str | None) -> None:
        if error.logged:
            return
        error.logged = True
        write_log({"schema": SCHEMA_VERSION, "request_id": request_id, "status": "rejected", "http_status": error.status,
                   "model": model, "errors": [error.message],
                   "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        allowed = (exc.headers or {}).get("Allow")
        if exc.status_code == 405 and allowed:
            message = f"{request.method} is not allowed on {request.url.path}; use {allowed}"
        elif exc.status_code == 404:
            message = (f"no such path {request.url.path}; this server answers POST /v1/chat/completions, "
                       "GET /v1/models, /v1/models/MODEL and /health")
        return JSONResponse(error_body(exc.status_code, message), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(ClientGone)
    async def _client_gone(_: Request, exc: ClientGone) -> Response:
        return Response(status_code=499)  # nobody reads it: the connection is gone

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("internal error: %s", type(exc).__name__)
        return JSONResponse(error_body(500, f"internal error ({type(exc).__name__}); see the server's log"),
                            status_code=500)

    def authorise(request: Request) -> None:
        if limits.api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if not given or scheme.lower() != "bearer":
            raise ApiError(401, "missing server key: send Authorization: Bearer <key>", code="missing_api_key")
        if not hmac.compare_digest(token.strip().encode(), limits.api_key.encode()):
            raise ApiError(401, "wrong server key", code="invalid_api_key")

    async def read_body(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_body:
            raise ApiError(413, f"the request body is larger than {count(limits.max_body, 'byte')}", code="body_too_large")
        body = bytearray()
        async for part in request.stream():
            body += part
            if len(body) > limits.max_body:
                raise ApiError(413, f"the request body is larger than {count(limits.max_body, 'byte')}", code="body_too_large")
        try:
            return json.loads(body)
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"the request body is not valid JSON ({json_problem(exc)})") from None
        except UnicodeDecodeError:
            raise ApiError(400, "the request body is not valid JSON (not UTF-8)") from None

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": len(ensembles), "in_flight": admission.active, "served": admission.served}

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        authorise(request)
        return served.listing()

    @app.get("/v1/models/{name:path}")
    async def model(name: str, request: Request) -> dict[str, Any]:
        authorise(request)
        return served.card(served.find(name, unknown_status=404))

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        request_id = uuid.uuid4().hex[:16]
        body: Any = None
        try:  # every refusal is logged, from a missing key or an oversized body on
            authorise(request)
            body = await read_body(request)
            admission.enter()
        except ApiError as error:
            error.headers.setdefault("x-request-id", request_id)
            model_name = body.get("model") if isinstance(body, dict) else None
            rejected(request_id, error, model_name if isinstance(model_name, str) else None)
            raise
        handed_off = False
        try:
            response = await _chat(body, request_id, request)
            handed_off = isinstance(response, StreamingResponse)  # the stream leaves when it ends
            return response
        except ApiError as error:
            error.headers.setdefault("x-request-id", request_id)
            raise
        finally:
            if not handed_off:
                admission.leave()

    def _job(body: Any, request_id: str) -> Job:
        """The request validated into a job; a refusal is logged with the request id."""
        model_name = body.get("model") if isinstance(body, dict) else None
        try:
            chat_request = parse_request(body)
            ensemble = served.find(chat_request.model)
            the_plan = plan(chat_request, catalog.spec(ensemble.strategy), request_id)

            def on_finished(finished: Finished) -> None:
                if finished.cancelled:
                    write_log({"schema": SCHEMA_VERSION, "request_id": request_id, "status": "cancelled",
                               "model": ensemble.name, "user": the_plan.user,
                               "errors": ["the client went away (or the server shut down): no further call was made"],
                               "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})
                elif finished.record:
                    write_log({**finished.record, "request_id": request_id, "model": ensemble.name,
                               "user": the_plan.user})
                elif finished.error is not None:
                    rejected(request_id, finished.error, ensemble.name)

            return Job(ensemble, the_plan, limits.deadline_s, on_finished, running)
        except ApiError as error:
            rejected(request_id, error, model_name if isinstance(model_name, str) else None)
            raise

    async def _chat(body: Any, request_id: str, request: Request) -> Any:
        job = _job(body, request_id)
        the_plan, name = job.plan, job.ensemble.name
        created = int(time.time())
        headers = {"x-request-id": request_id}
        if the_plan.stream:
            async def body_stream() -> AsyncIterator[str]:
                try:
                    async for piece in streaming.events(job, the_plan, name, request_id, created,
                                                        limits.keep_alive_s):
                        yield piece
                finally:
                    admission.leave()

            return StreamingResponse(body_stream(), media_type="text/event-stream",
                                     headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        record = await until_gone(job.result(), request)
        return JSONResponse(responses.completion(record, name, request_id, created, the_plan.logprobs,
                                                 the_plan.top_logprobs), headers=headers)

    return app
