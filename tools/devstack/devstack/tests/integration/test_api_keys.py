"""The opaque API keys (``sb_publishable_…`` / ``sb_secret_…``) at the gateway, as hosted translates
them (docs/hosted-platform.md §1.2–§1.4), on REST, RPC, Auth, Storage, Realtime HTTP broadcast and
the Realtime websocket: with httpx for the exact answers, and with the real supabase-py client
created with the new keys.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from postgrest.exceptions import APIError
from realtime.types import RealtimeChannelOptions
from storage3.exceptions import StorageApiError
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from devstack import cli, keys
from devstack.testing.callbacks import Collector, SubscribeStatus
from devstack.testing.fixtures import Stack
from devstack.tests.integration.auth_helpers import new_client
from devstack.tests.integration.realtime_support import ws_url
from supabase import AsyncClient

pytestmark = pytest.mark.integration

BROWSER_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"
# A custom User-Agent that merely contains a platform token: hosted let it through (§1.4).
CUSTOM_UA = "MedicalTripAutomation/1.0 (Macintosh; Intel Mac OS X 10_15_7)"
PRIVATE: RealtimeChannelOptions = {"config": {"private": True, "broadcast": None, "presence": None}}
WELL_FORMED_UNKNOWN = "sb_secret_" + "Q" * 22 + "_" + "z" * 8
INVALID = (401, {"message": "Invalid API key"}, "UNAUTHORIZED_INVALID_API_KEY")
UNREGISTERED = (
    401,
    {
        "message": "Unregistered API key",
        "hint": "Double check the provided API key as it is not registered for this project.",
    },
    None,
)
SECRET_IN_BROWSER = (
    401,
    {
        "message": "Forbidden use of secret API key in browser",
        "hint": "Secret API keys can only be used in a protected environment and should never be used in a "
        "browser. Delete this secret API key immediately!",
    },
    "UNAUTHORIZED_INVALID_API_KEY_TYPE",
)


@pytest.fixture(scope="module")
def new_keys(stack: Stack) -> Stack:
    return stack.with_flavour("new")


@dataclass(frozen=True)
class Surface:
    """One request per service behind the gateway; ``None`` body means GET."""

    name: str
    method: str
    path: str
    body: Any = None


SURFACES = [
    Surface("rest", "GET", "/rest/v1/jobs?select=id&limit=1"),
    Surface("rpc", "POST", "/rest/v1/rpc/next_job_run_at", {}),
    Surface("auth", "GET", "/auth/v1/settings"),
    Surface("storage", "GET", "/storage/v1/bucket"),
    Surface("broadcast", "POST", "/realtime/v1/api/broadcast", {"messages": []}),
]


async def call(stack: Stack, surface: Surface, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        return await http.request(surface.method, surface.path, json=surface.body, headers=headers)


def key_headers(key: str, *, bearer: str | None = "same", user_agent: str | None = None) -> dict[str, str]:
    """``apikey`` plus, as supabase-py and supabase-js send it without a session, the key as Bearer."""
    headers = {"apikey": key}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {key if bearer == 'same' else bearer}"
    if user_agent is not None:
        headers["User-Agent"] = user_agent
    return headers


def assert_refused(response: httpx.Response, expected: tuple[int, dict[str, str], str | None]) -> None:
    status, body, code = expected
    assert (response.status_code, response.json()) == (status, body)
    assert response.headers.get("sb-error-code") == code


async def handshake_refusal(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any, str | None]:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, additional_headers=headers):
            pass
    response = info.value.response
    return response.status_code, json.loads(response.body or b"{}"), response.headers.get("sb-error-code")


@pytest.fixture
def revoked_secret(stack: Stack) -> str:
    """A secret key made for this test and revoked with the CLI (the stack's defaults stay)."""
    if not stack.local:
        pytest.skip("making and revoking keys needs the local devstack")
    key = keys.new("secret", f"revoked-{uuid.uuid4().hex[:8]}").key
    assert cli.main(["keys", "revoke", key]) == 0
    return key


# --- the translation: same behaviour as the legacy key of the same role ----------------------------


@pytest.mark.parametrize("surface", SURFACES, ids=lambda s: s.name)
@pytest.mark.parametrize("bearer", ["same", None], ids=["key-as-bearer", "apikey-only"])
async def test_new_keys_act_exactly_as_the_legacy_key_of_their_role(
    new_keys: Stack, surface: Surface, bearer: str | None
) -> None:
    # Either way the gateway sends the role's JWT as apikey and Bearer, so the equivalent legacy
    # request carries both (Storage reads only the Bearer).
    for new, legacy in ((new_keys.client_key, new_keys.anon_key), (new_keys.server_key, new_keys.service_role_key)):
        got = await call(new_keys, surface, key_headers(new, bearer=bearer))
        want = await call(new_keys, surface, key_headers(legacy))
        assert (got.status_code, got.json()) == (want.status_code, want.json()), surface


async def test_publishable_key_is_anon_and_secret_key_is_service_role(new_keys: Stack) -> None:
    anon = await call(new_keys, SURFACES[0], key_headers(new_keys.client_key))
    assert anon.status_code == 401 and anon.json()["code"] == "42501"  # anon may not read jobs
    service = await call(new_keys, SURFACES[0], key_headers(new_keys.server_key))
    assert service.status_code == 200 and isinstance(service.json(), list)
    buckets = await call(new_keys, SURFACES[3], key_headers(new_keys.server_key))
    assert "job-artifacts" in {b["id"] for b in buckets.json()}


async def test_the_apikey_url_parameter_is_translated_too(new_keys: Stack) -> None:
    async with httpx.AsyncClient(base_url=new_keys.url) as http:
        served = await http.get("/rest/v1/jobs", params={"select": "id", "limit": "1", "apikey": new_keys.server_key})
        unknown = await http.get("/rest/v1/jobs", params={"select": "id", "apikey": WELL_FORMED_UNKNOWN})
    assert served.status_code == 200
    assert_refused(unknown, UNREGISTERED)


async def test_a_user_token_in_authorization_wins_over_the_key(new_keys: Stack) -> None:
    async with httpx.AsyncClient(base_url=new_keys.url) as http:
        session = (await http.post("/auth/v1/signup", json={}, headers={"apikey": new_keys.client_key})).json()
        token = session["access_token"]
        claim = {"worker_id": "api-keys-test", "kinds": ["generate_design"], "max_jobs": 1}
        as_service = await http.post("/rest/v1/rpc/claim_jobs", json=claim, headers=key_headers(new_keys.server_key))
        as_user = await http.post(
            "/rest/v1/rpc/claim_jobs", json=claim, headers=key_headers(new_keys.server_key, bearer=token)
        )
        user_jobs = await http.get("/rest/v1/jobs?select=id", headers=key_headers(new_keys.client_key, bearer=token))
    assert as_service.status_code == 200, as_service.text
    assert as_user.status_code == 403 and as_user.json()["code"] == "42501", as_user.text  # RLS as the user
    assert (user_jobs.status_code, user_jobs.json()) == (200, [])


async def test_a_legacy_apikey_with_an_opaque_bearer_acts_as_the_apikey(new_keys: Stack) -> None:
    # The bearer (a secret key) is not a user token: the legacy anon apikey decides the role.
    response = await call(new_keys, SURFACES[0], key_headers(new_keys.anon_key, bearer=new_keys.server_key))
    assert response.status_code == 401 and response.json()["code"] == "42501"


# --- refusals: hosted's status, body and sb-error-code, on every surface ---------------------------


@pytest.mark.parametrize("surface", SURFACES, ids=lambda s: s.name)
@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("sb_secret_bad", INVALID),
        ("sb_publishable_" + "a" * 22 + "_" + "b" * 7, INVALID),  # one checksum character short
        ("sb_temp_" + "a" * 22 + "_" + "b" * 8, INVALID),
        ("sb_", INVALID),
        (WELL_FORMED_UNKNOWN, UNREGISTERED),
        ("sb_publishable_" + "Z" * 22 + "_" + "0" * 8, UNREGISTERED),
    ],
    ids=["short", "bad-checksum-length", "temp-kind", "bare-prefix", "unknown-secret", "unknown-publishable"],
)
async def test_a_bad_opaque_key_is_refused_before_any_service(
    stack: Stack, surface: Surface, key: str, expected: tuple[int, dict[str, str], str | None]
) -> None:
    assert_refused(await call(stack, surface, key_headers(key)), expected)


@pytest.mark.parametrize("surface", SURFACES, ids=lambda s: s.name)
async def test_a_revoked_key_is_unregistered(stack: Stack, surface: Surface, revoked_secret: str) -> None:
    assert_refused(await call(stack, surface, key_headers(revoked_secret)), UNREGISTERED)


async def test_a_key_revoked_while_the_gateway_runs_stops_working_at_once(stack: Stack) -> None:
    if not stack.local:
        pytest.skip("making and revoking keys needs the local devstack")
    key = keys.new("secret", f"live-{uuid.uuid4().hex[:8]}").key
    assert (await call(stack, SURFACES[0], key_headers(key))).status_code == 200
    assert cli.main(["keys", "revoke", key[:20]]) == 0  # a prefix names it
    assert_refused(await call(stack, SURFACES[0], key_headers(key)), UNREGISTERED)
    assert cli.main(["keys", "revoke", key]) == 2  # already revoked: said so, nothing changes


@pytest.mark.parametrize("surface", SURFACES, ids=lambda s: s.name)
async def test_a_secret_key_from_a_browser_is_refused(new_keys: Stack, surface: Surface) -> None:
    refused = await call(new_keys, surface, key_headers(new_keys.server_key, user_agent=BROWSER_UA))
    assert_refused(refused, SECRET_IN_BROWSER)
    # Only the secret key, and only a browser's User-Agent (Origin plays no part).
    for key, agent in (
        (new_keys.client_key, BROWSER_UA),
        (new_keys.service_role_key, BROWSER_UA),
        (new_keys.server_key, CUSTOM_UA),
    ):
        response = await call(new_keys, surface, key_headers(key, user_agent=agent) | {"Origin": "null"})
        assert response.headers.get("sb-error-code") is None, (key[:12], agent)


# --- the Realtime websocket ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [("sb_secret_bad", INVALID), (WELL_FORMED_UNKNOWN, UNREGISTERED)],
    ids=["invalid", "unregistered"],
)
async def test_the_websocket_upgrade_is_refused_for_a_bad_key(
    stack: Stack, key: str, expected: tuple[int, dict[str, str], str | None]
) -> None:
    assert await handshake_refusal(ws_url(stack, apikey=key)) == expected


async def test_the_websocket_upgrade_is_refused_for_revoked_and_browser_secret_keys(
    new_keys: Stack, revoked_secret: str
) -> None:
    assert await handshake_refusal(ws_url(new_keys, apikey=revoked_secret)) == UNREGISTERED
    browser = await handshake_refusal(ws_url(new_keys, apikey=new_keys.server_key), {"User-Agent": BROWSER_UA})
    assert browser == SECRET_IN_BROWSER


@pytest.mark.parametrize("kind", ["publishable", "secret"])
async def test_the_websocket_accepts_the_new_keys(new_keys: Stack, kind: str) -> None:
    key = new_keys.client_key if kind == "publishable" else new_keys.server_key
    async with connect(ws_url(new_keys, apikey=key)) as ws:
        await ws.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"}))
        assert json.loads(await ws.recv())["payload"] == {"status": "ok", "response": {}}


# --- the real supabase-py client with the new keys -------------------------------------------------


@pytest.fixture
async def publishable_client(new_keys: Stack) -> AsyncIterator[AsyncClient]:
    client = await new_client(new_keys, new_keys.client_key)
    yield client
    await client.realtime.remove_all_channels()


async def test_supabase_py_publishable_key_then_sign_in(new_keys: Stack, publishable_client: AsyncClient) -> None:
    with pytest.raises(APIError) as refused:
        await publishable_client.table("jobs").select("id").execute()
    assert refused.value.code == "42501"  # anon: no grant on jobs

    signed_in = await publishable_client.auth.sign_in_anonymously()
    assert signed_in.user is not None and signed_in.session is not None
    uid = signed_in.user.id
    job = await publishable_client.rpc("enqueue_job", {"kind": "rename_layers", "payload": {"layers": []}}).execute()
    assert isinstance(job.data, dict) and job.data["user_id"] == uid
    mine = await publishable_client.table("jobs").select("id").execute()
    assert mine.data == [{"id": job.data["id"]}]

    other = await new_client(new_keys, new_keys.client_key)  # another visitor, same key, no session
    with pytest.raises(APIError):
        await other.table("jobs").select("id").execute()


async def test_supabase_py_secret_key_is_the_service_role(new_keys: Stack) -> None:
    service = await new_client(new_keys, new_keys.server_key)
    claimed = await service.rpc(
        "claim_jobs", {"worker_id": "api-keys-py", "kinds": ["generate_image"], "max_jobs": 1}
    ).execute()
    assert isinstance(claimed.data, list)

    anon = await new_client(new_keys, new_keys.client_key)
    with pytest.raises(APIError) as refused:
        await anon.rpc("claim_jobs", {"worker_id": "api-keys-py", "max_jobs": 1}).execute()
    assert refused.value.code == "42501"

    # Storage: the secret key writes and reads the private bucket; the publishable key cannot read it.
    path, data = f"api-keys-test/{uuid.uuid4().hex}.png", b"\x89PNG not really"
    bucket = service.storage.from_("job-artifacts")
    await bucket.upload(path, data, {"content-type": "image/png"})
    try:
        assert await bucket.download(path) == data
        with pytest.raises(StorageApiError):
            await anon.storage.from_("job-artifacts").download(path)
    finally:
        await bucket.remove([path])


async def test_supabase_py_realtime_private_topic_with_the_publishable_key(
    new_keys: Stack, publishable_client: AsyncClient
) -> None:
    signed_in = await publishable_client.auth.sign_in_anonymously()
    assert signed_in.user is not None and signed_in.session is not None
    topic = f"jobs:{signed_in.user.id}"

    # Key only (the socket's token is the publishable key's anon JWT): the private topic is refused.
    keyless = await new_client(new_keys, new_keys.client_key)
    status = SubscribeStatus()
    await keyless.channel(topic, PRIVATE).subscribe(status)
    err = await status.wait_for("CHANNEL_ERROR")
    assert "Unauthorized" in str(err)
    await keyless.realtime.remove_all_channels()

    # With the user's token: joined, and the job's changes arrive.
    await publishable_client.realtime.set_auth(signed_in.session.access_token)
    got, status = Collector(), SubscribeStatus()
    channel = publishable_client.channel(topic, PRIVATE)
    channel.on_broadcast("job", got)
    await channel.subscribe(status)
    assert await status.wait_for("SUBSCRIBED") is None
    job = await publishable_client.rpc("enqueue_job", {"kind": "rename_layers", "payload": {"layers": []}}).execute()
    assert isinstance(job.data, dict)
    message = await got.next()
    assert (message["payload"]["id"], message["payload"]["status"]) == (job.data["id"], "queued")
