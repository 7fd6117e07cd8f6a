"""The HTTP transport under every remote call: per-endpoint concurrency bound and per-attempt deadline.

``EndpointTransport`` wraps an ``httpx.AsyncBaseTransport``. For each HTTP request (each attempt of
the SDK's retry loop) it

* takes a slot of the endpoint's semaphore and gives it back when the response body is closed: a
  streamed reply holds its slot until it is fully read or closed, while the SDK's back-off sleep
  between attempts holds none (the SDK closes a failed response before it sleeps);
* enforces ``timeout`` as a deadline on the whole attempt: connect, headers, body and stream. httpx's
  own timeouts are per operation, so a server dribbling a byte every 0.2 s would never trip them;
* reads error bodies at once (they are small) and marks those that say retrying cannot help with
  ``x-should-retry: false``, which the openai SDK obeys; it has no way to read a body for this itself.

Semaphores are created lazily, inside the event loop that owns the registry.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Callable

import httpx

from .retry import permanent_reason

SHOULD_RETRY_HEADER = "x-should-retry"


class EndpointTransport(httpx.AsyncBaseTransport):
    """One endpoint's view of a shared transport: at most ``max_concurrency`` requests open at once."""

    def __init__(self, inner: httpx.AsyncBaseTransport, max_concurrency: int, timeout_s: float) -> None:
        self._inner = inner
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self._semaphore: asyncio.Semaphore | None = None
        self.in_flight = 0
        self.max_in_flight = 0

    def _slots(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        return self._semaphore

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        slots = self._slots()
        await slots.acquire()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.in_flight -= 1
                slots.release()

        deadline = asyncio.get_running_loop().time() + self.timeout_s
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    response = await self._inner.handle_async_request(request)
            except TimeoutError:
                raise self._timed_out(request) from None
            if response.status_code >= 400:
                return await self._error_response(response, request, deadline, release)
        except BaseException:
            release()
            raise
        stream = DeadlineStream(response.stream, deadline, release, lambda: self._timed_out(request))
        return httpx.Response(response.status_code, headers=response.headers, stream=stream,
                              extensions=response.extensions)

    async def _error_response(self, response: httpx.Response, request: httpx.Request, deadline: float,
                              release: Callable[[], None]) -> httpx.Response:
        try:
            async with asyncio.timeout_at(deadline):
                body = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
        except TimeoutError:
            raise self._timed_out(request) from None
        finally:
            await response.stream.aclose()  # type: ignore[union-attr]
            release()
        headers = httpx.Headers(response.headers)
        if permanent_reason(response.status_code, body) is not None:
            headers[SHOULD_RETRY_HEADER] = "false"
        return httpx.Response(response.status_code, headers=headers, stream=httpx.ByteStream(body),
                              extensions=response.extensions)

    def _timed_out(self, request: httpx.Request) -> httpx.ReadTimeout:
        return httpx.ReadTimeout(f"no complete reply within timeout={self.timeout_s:g} s", request=request)

    async def aclose(self) -> None:
        """The shared inner transport is closed by the registry that owns it."""


class DeadlineStream(httpx.AsyncByteStream):
    """A response body that must arrive by ``deadline`` and gives its slot back once closed."""

    def __init__(self, inner: httpx.AsyncByteStream | httpx.SyncByteStream, deadline: float,
                 release: Callable[[], None], timed_out: Callable[[], Exception]) -> None:
        self._inner = inner
        self._deadline = deadline
        self._release = release
        self._timed_out = timed_out

    async def __aiter__(self) -> AsyncIterator[bytes]:
        iterator = self._inner.__aiter__()  # type: ignore[union-attr]
        while True:
            try:
                async with asyncio.timeout_at(self._deadline):
                    chunk = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise self._timed_out() from None
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()  # type: ignore[union-attr]
        finally:
            self._release()


class ClientTransport(httpx.AsyncBaseTransport):
    """Sends through a caller's ``httpx.AsyncClient`` (``ProviderRegistry(http_client=...)``), so tests
    and embedders can swap the network while the bound and deadline above still apply."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._client.send(request, stream=True)
        return httpx.Response(response.status_code, headers=response.headers, stream=response.stream,
                              extensions=response.extensions)

    async def aclose(self) -> None:
        """The caller owns its client and closes it."""
