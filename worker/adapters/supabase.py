"""QueueStore, Wakeups and ArtifactStore over supabase-py's AsyncClient (the default transport).

RPC over REST (PostgREST) with the service-role key; wake-ups on the worker's own private
Realtime topic worker:<id> (Broadcast from Database); Storage for artifacts. One AsyncClient
serves all three.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import HttpxAiohttpClient
from postgrest.base_request_builder import RequestConfig
from postgrest.exceptions import APIError, APIErrorFromJSON, generate_default_error_message
from pydantic import ValidationError
from realtime import AsyncRealtimeChannel
from realtime.types import BroadcastPayload
from storage3.exceptions import StorageApiError

from supabase import AsyncClient, AsyncClientOptions, acreate_client
from worker.adapters.rpc_store import RpcStore
from worker.core.errors import StoreError, StoreUnavailable, store_error
from worker.core.job_rows import read_job_list, read_time, read_wake
from worker.core.jobs import JobKind, JobRow, Wake
from worker.core.ports import VIEWS
from worker.core.retry import RetryPolicy

log = logging.getLogger("worker.supabase")
ARTIFACT_BUCKET = "job-artifacts"
HTTP_CONNECTIONS = 100
# What reaching the server can raise: httpx's errors (the transport maps aiohttp's to them), and
# an aiohttp error it does not map.
_TRANSPORT_ERRORS = (httpx.HTTPError, aiohttp.ClientError, OSError)
# PostgREST's "cannot reach the database" codes, and what proxies answer meanwhile.
_UNAVAILABLE_CODES = frozenset({"PGRST000", "PGRST001", "PGRST002", "PGRST003", "500", "502", "503", "504"})


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _ApiClient(HttpxAiohttpClient):
    """httpx's client that keeps no cookies. The REST and Storage APIs authenticate every call
    with the key; httpx would read each answer's headers for Set-Cookie through the standard
    library's cookiejar (a urllib request and an email message built per call: 2-3 % of the
    worker's CPU via Supabase, bench/FIXES.md), and send back whatever a proxy on the way set."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._none = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._none

    @cookies.setter
    def cookies(self, cookies: httpx._types.CookieTypes) -> None:
        raise TypeError("this client keeps no cookies")

    async def send(self, request: httpx.Request, *, stream: bool = False, **options: Any) -> httpx.Response:
        response = await super().send(request, stream=stream, **options)
        if not stream:
            # httpx binds each response's stream to the response (stream -> response -> stream), a
            # reference cycle per call with the aiohttp response, headers and request inside: only
            # the garbage collector freed them, ~20,000 objects a time, 30-90 ms with the event loop
            # stopped under the AI load (bench/FIXES.md). The body is read and the stream closed:
            # the response keeps its content, as one httpx builds from content does.
            response.stream = httpx.ByteStream(response.content)
        return response


async def connect(
    url: str, service_role_key: str, *, request_seconds: float = 15.0, connections: int = HTTP_CONNECTIONS
) -> AsyncClient:
    # Our own HTTP client: supabase-py's default keeps only 20 idle connections, so a worker with
    # more calls in flight (progress, claims, acks of 200 jobs) closed and reopened connections on
    # every burst (hundreds in TIME_WAIT in the 200-user benchmark). httpx's API on aiohttp's
    # transport (httpx-aiohttp, what the anthropic SDK's aiohttp extra is built from): less CPU per
    # call than httpcore's pool (bench/FIXES.md); its session is made on the first request.
    http = _ApiClient(
        timeout=request_seconds,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )
    options = AsyncClientOptions(
        httpx_client=http,  # REST and Storage requests use full URLs, so no base_url is needed
        postgrest_client_retry=False,  # the worker owns retries (backoff + health reporting)
        auto_refresh_token=False,
        persist_session=False,
    )
    return await acreate_client(url, service_role_key, options=options)


def _translate(exc: Exception) -> StoreError:
    if isinstance(exc, APIError):
        code = exc.code or ""
        message = exc.message or str(exc)
        if code in _UNAVAILABLE_CODES or code.startswith(("08", "57P")):
            return StoreUnavailable(message, code=code)
        return store_error(code, message + (f" ({exc.hint})" if exc.hint else ""))
    # httpx-aiohttp re-raises aiohttp's errors as httpx's, and names a refused connection
    # ConnectTimeout: the aiohttp error it came from says what happened.
    cause = exc.__cause__ if isinstance(exc.__cause__, aiohttp.ClientError) else exc
    return StoreUnavailable(f"{type(cause).__name__}: {cause}".strip())


def _api_error(response: httpx.Response) -> APIError:
    """The error postgrest-py would raise for this answer (it parses PostgREST's error body the same way)."""
    try:
        return APIError(dict(APIErrorFromJSON.model_validate_json(response.content)))
    except ValidationError:
        return APIError(generate_default_error_message(response))


def _json_value(value: Any) -> Any:
    """RPC arguments travel as JSON: uuids and datetimes as their text forms."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


class SupabaseStore(RpcStore):
    wake_via = "realtime"  # RealtimeWakeups: no NOTIFY reaches a worker that talks REST

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def _send(self, name: str, args: dict[str, Any]) -> httpx.Response:
        # The raw answer rather than postgrest-py's decoded one: a single row holding JSON nested
        # deeper than Python's json goes (or a number too long for int) would make the whole body
        # undecodable there (RecursionError), and with it every other row of a claim.
        request: RequestConfig[httpx.AsyncClient] = self.client.rpc(
            name, {k: _json_value(v) for k, v in args.items()}
        ).request
        try:
            response = await request.send(httpx.Headers())
        except _TRANSPORT_ERRORS as exc:
            raise _translate(exc) from exc
        if not response.is_success:
            raise _translate(_api_error(response))
        return response

    async def _rpc(self, name: str, args: dict[str, Any]) -> Any:
        response = await self._send(name, args)
        try:
            return json.loads(response.content) if response.content.strip() else None
        except (ValueError, RecursionError) as exc:
            raise StoreError(f"{name}: unreadable answer ({type(exc).__name__})") from exc

    async def _jobs(self, name: str, args: dict[str, Any]) -> list[JobRow]:
        return read_job_list((await self._send(name, args)).text)

    async def _void(self, name: str, args: dict[str, Any]) -> None:
        await self._send(name, args)

    async def _records(self, name: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        data = await self._rpc(name, args)
        return [data] if isinstance(data, dict) else list(data or [])  # a function returning one row: an object

    async def _scalar(self, name: str, args: dict[str, Any]) -> Any:
        return await self._rpc(name, args)

    async def _kind_model_rows(self) -> list[dict[str, Any]]:
        try:
            response = (
                await self.client.table("kind_models")
                .select("kind,provider,model")
                .order("kind")
                .order("position")
                .execute()
            )
        except (APIError, *_TRANSPORT_ERRORS) as exc:
            raise _translate(exc) from exc
        return [row for row in response.data if isinstance(row, dict)]

    async def reap_expired_leases(self) -> int:
        return int(await self._rpc("reap_expired_leases", {}))

    async def next_run_at(self, kinds: Sequence[str] | None) -> datetime | None:
        return read_time(await self._rpc("next_job_run_at", {"kinds": list(kinds) if kinds else None}))

    async def job_kinds(self) -> list[JobKind]:
        try:
            response = await self.client.table("job_kinds").select("kind,timeout_seconds,max_attempts").execute()
        except (APIError, *_TRANSPORT_ERRORS) as exc:
            raise _translate(exc) from exc
        return [JobKind.model_validate(row) for row in response.data]

    async def read_view(self, view: str) -> list[dict[str, Any]]:
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; known: {', '.join(sorted(VIEWS))}")
        try:
            response = await self.client.table(view).select("*").limit(200).execute()
        except (APIError, *_TRANSPORT_ERRORS) as exc:
            raise _translate(exc) from exc
        return [row for row in response.data if isinstance(row, dict)]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.realtime.close()
        with contextlib.suppress(Exception):
            await self.client.postgrest.aclose()  # and the HTTP client REST and Storage share


class RealtimeWakeups:
    """The private topic worker:<worker_id>, event "wake": the database broadcasts there when it
    wakes this parked worker for a queued job (20261204000600_worker_wakeups.sql). Only the
    service role may join it (it bypasses RLS on realtime.messages; no policy lets users in).
    The subscription is supervised: when the socket gives up after its own retries, a new
    channel is made; ``on_joined`` runs after every (re)join."""

    def __init__(self, client: AsyncClient, *, retry: RetryPolicy | None = None) -> None:
        self.client = client
        self.topic = ""
        self.retry = retry or RetryPolicy(base=1.0, cap=15.0)
        self._connected = False
        self._task: asyncio.Task[None] | None = None
        self._state = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._connected

    async def start(self, worker_id: str, on_wake: Callable[[Wake], None], on_joined: Callable[[], None]) -> None:
        self.topic = f"worker:{worker_id}"
        self._task = asyncio.create_task(self._supervise(on_wake, on_joined), name="realtime-jobs")

    def _channel(self, on_wake: Callable[[Wake], None]) -> AsyncRealtimeChannel:
        def woken(message: BroadcastPayload) -> None:
            if (wake := read_wake(message.get("payload") if isinstance(message, dict) else None)) is not None:
                on_wake(wake)

        channel = self.client.channel(
            self.topic, {"config": {"private": True, "broadcast": {"self": False, "ack": False}, "presence": None}}
        )
        channel.on_broadcast("wake", woken)
        return channel

    async def _supervise(self, on_wake: Callable[[Wake], None], on_joined: Callable[[], None]) -> None:
        failures = 0
        while True:
            channel: AsyncRealtimeChannel | None = None
            try:
                channel = self._channel(on_wake)
                await channel.subscribe(lambda _status, _err: self._state.set())
                while True:
                    joined = channel.is_joined and self.client.realtime.is_connected
                    if joined and not self._connected:
                        failures = 0
                        log.info("realtime subscription joined: %s", self.topic)
                        on_joined()
                    elif self._connected and not joined:
                        log.warning("realtime subscription lost: %s (state %s)", self.topic, channel.state)
                    self._connected = joined
                    if channel.is_closed or (not self.client.realtime.is_connected and not channel.is_joining):
                        # The socket stopped retrying (or the server closed the channel): start over.
                        await self._pause_for_socket()
                        if not self.client.realtime.is_connected:
                            break
                    self._state.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1.0):
                            await self._state.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("realtime subscribe failed: %s", str(exc)[:200])
            self._connected = False
            failures += 1
            if channel is not None:
                with contextlib.suppress(Exception):
                    await self.client.realtime.remove_channel(channel)
            with contextlib.suppress(Exception):
                await self.client.realtime.close()
            await asyncio.sleep(self.retry.delay(failures, 0.5))

    async def _pause_for_socket(self) -> None:
        # The client reconnects by itself for a while; give it a moment before replacing it.
        for _ in range(10):
            if self.client.realtime.is_connected:
                return
            await asyncio.sleep(0.5)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.client.realtime.close()


class StorageArtifacts:
    """Uploads to the private job-artifacts bucket with the service role."""

    def __init__(self, client: AsyncClient, bucket: str = ARTIFACT_BUCKET) -> None:
        self.client = client
        self.bucket = bucket

    async def upload(self, path: str, data: bytes, content_type: str) -> None:
        try:
            # upsert: a retried attempt overwrites its own earlier upload instead of failing.
            await self.client.storage.from_(self.bucket).upload(
                path, data, {"content-type": content_type, "upsert": "true"}
            )
        except StorageApiError as exc:
            raise StoreError(f"storage upload {path}: {exc}", code="storage") from exc
        except _TRANSPORT_ERRORS as exc:
            raise StoreUnavailable(f"storage upload {path}: {exc}") from exc

    async def remove(self, paths: Sequence[str]) -> None:
        # Storage's delete answers the objects it removed; one already gone is simply not listed.
        if not paths:
            return
        try:
            await self.client.storage.from_(self.bucket).remove(list(paths))
        except StorageApiError as exc:
            raise StoreError(f"storage remove of {len(paths)} object(s): {exc}", code="storage") from exc
        except _TRANSPORT_ERRORS as exc:
            raise StoreUnavailable(f"storage remove of {len(paths)} object(s): {exc}") from exc
