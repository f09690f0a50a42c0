"""The HTTP transports under the worker's clients (aiohttp for the anthropic SDK and for REST and
Storage, httpx2 for google-genai): a server that cannot be reached, or that drops the connection
before answering, is a failure the worker knows (StoreUnavailable, TransientFailure), never a raw
transport exception. Loopback only; each server stops with its test."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from opentelemetry import trace

from worker.adapters.supabase import SupabaseStore, connect
from worker.core.errors import StoreUnavailable, TransientFailure
from worker.core.ports import TextRequest
from worker.providers.claude import ClaudeProvider
from worker.providers.gemini import GeminiProvider

pytestmark = pytest.mark.asyncio


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def hangup() -> AsyncIterator[str]:
    """A server that reads the request's first bytes and closes the connection without a word."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def _store(url: str) -> SupabaseStore:
    return SupabaseStore(await connect(url, "sb_secret_test", request_seconds=5))


async def test_rest_to_a_closed_port_is_store_unavailable() -> None:
    store = await _store(f"http://127.0.0.1:{_closed_port()}")
    try:
        # Named by aiohttp's error, not by the ConnectTimeout httpx-aiohttp maps it to.
        with pytest.raises(StoreUnavailable, match=r"^ClientConnectorError: Cannot connect to host"):
            await store.unpark("w1")
    finally:
        await store.close()


async def test_rest_to_a_server_that_hangs_up_is_store_unavailable(hangup: str) -> None:
    store = await _store(hangup)
    try:
        with pytest.raises(StoreUnavailable):
            await store.unpark("w1")
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def _rest_server(function: str, handler: Callable[[web.Request], Awaitable[web.Response]]) -> AsyncIterator[str]:
    """A loopback server answering POST /rest/v1/rpc/<function> with ``handler``; yields its URL."""
    app = web.Application()
    app.router.add_post(f"/rest/v1/rpc/{function}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_rest_keeps_no_cookie_a_server_sets() -> None:
    # A proxy on the way may set one (a bot-management cookie, say): the worker's calls
    # authenticate with the key and send back nothing a server set.
    cookies: list[str | None] = []

    async def rpc(request: web.Request) -> web.Response:
        cookies.append(request.headers.get("Cookie"))
        response = web.json_response(None)
        response.set_cookie("__cf_bm", "abc", path="/")
        return response

    async with _rest_server("unpark_worker", rpc) as url:
        store = await _store(url)
        try:
            await store.unpark("w1")
            await store.unpark("w1")
        finally:
            await store.close()
    assert cookies == [None, None]


async def test_a_rest_answer_is_freed_without_the_garbage_collector() -> None:
    # httpx binds each response's stream to the response, a reference cycle per call that only
    # the cycle collector frees, in pauses of the whole event loop under load (bench/FIXES.md).
    # The worker's client breaks it once the body is read: dropping the answer frees it at once.
    async def rpc(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async with _rest_server("unpark_worker", rpc) as url:
        store = await _store(url)
        gc.collect()
        gc.disable()
        try:
            response = await store._send("unpark_worker", {"worker_id": "w1"})
            assert response.json() == {"ok": True}
            freed = weakref.ref(response)
            request = weakref.ref(response.request)
            del response
            assert freed() is None, "the answer is still referenced: a cycle only gc.collect() frees"
            assert request() is None
        finally:
            gc.enable()
            await store.close()


@pytest.mark.parametrize("where", ["closed", "hangup"])
async def test_anthropic_to_a_dead_server_is_transient(where: str, hangup: str) -> None:
    url = hangup if where == "hangup" else f"http://127.0.0.1:{_closed_port()}"
    provider = ClaudeProvider("k", url, timeout_seconds=5)
    try:
        with pytest.raises(TransientFailure, match="anthropic"):
            await provider.complete("claude-haiku-4-5", TextRequest.ask("system", "hi"))
    finally:
        await provider.close()


async def test_gemini_to_a_closed_port_fails_at_once_on_httpx2() -> None:
    # On aiohttp, google-genai would sleep 1-10 s and retry by itself; on httpx2 the first
    # connection error is the worker's to handle (named by httpx2's type).
    provider = GeminiProvider("k", f"http://127.0.0.1:{_closed_port()}", timeout_seconds=5)
    try:
        with pytest.raises(TransientFailure, match="gemini transport: ConnectError"):
            await provider.complete("gemini-2.5-flash", TextRequest.ask("system", "hi"))
    finally:
        await provider.close()


@pytest.mark.parametrize("registered", ["none", "provider", "env"])
async def test_anthropic_spans_only_with_a_tracer_provider(registered: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without a registered provider the SDK's spans record nothing but cost each call its
    # attributes; with one (or one named for OpenTelemetry to load) they are the SDK's default.
    monkeypatch.delenv("OTEL_PYTHON_TRACER_PROVIDER", raising=False)
    if registered == "provider":
        monkeypatch.setattr(trace, "get_tracer_provider", trace.NoOpTracerProvider)
    elif registered == "env":
        monkeypatch.setenv("OTEL_PYTHON_TRACER_PROVIDER", "sdk_tracer_provider")
    provider = ClaudeProvider("k", f"http://127.0.0.1:{_closed_port()}", timeout_seconds=5)
    try:
        assert provider.client.open_telemetry["traces"]["enabled"] is (registered != "none")
    finally:
        await provider.close()
