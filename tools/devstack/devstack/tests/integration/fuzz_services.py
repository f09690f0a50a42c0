"""Auth, Storage, Realtime (HTTP broadcast) and edge templates for the gateway fuzz test: what
supabase-js/py, the plugin and the worker send to everything but ``/rest/v1``."""

from __future__ import annotations

import base64
import random

from devstack.tests.integration.fuzz_model import FuzzRequest, Subjects
from devstack.tests.integration.fuzz_values import HOSTILE_VALUES

BOUNDARY = "fuzzboundary"


def _multipart(fields: dict[str, str], data: bytes, content_type: str = "text/plain") -> bytes:
    """storage3's upload: form fields and one ``file`` part."""
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields.items()]
    file_head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    )
    return "".join(parts).encode() + file_head.encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def auth(rng: random.Random, s: Subjects) -> list[FuzzRequest]:
    email = f"fuzz-{rng.randrange(10**9)}@example.com"
    return [
        FuzzRequest("auth", "POST", "/auth/v1/signup", body={"data": {"plan": "free"}}, creds="publishable"),
        FuzzRequest(
            "auth",
            "POST",
            "/auth/v1/signup",
            body={
                "email": email,
                "password": "correct horse battery",
                "data": {"name": "ü"},
                "code_challenge": "x" * 43,
                "code_challenge_method": "s256",
                "gotrue_meta_security": {"captcha_token": "t"},
            },
            creds="anon",
        ),
        FuzzRequest("auth", "POST", "/auth/v1/signup", body={"phone": "+15555550100", "password": "x" * 10}),
        FuzzRequest(
            "auth", "POST", "/auth/v1/token", [("grant_type", "id_token")], body={"provider": "google", "id_token": "a"}
        ),
        FuzzRequest(
            "auth",
            "POST",
            "/auth/v1/token",
            [("grant_type", "password")],
            body={"email": "nobody@example.com", "password": "x" * 8},
            creds="publishable",
        ),
        FuzzRequest("auth", "POST", "/auth/v1/token", [("grant_type", "refresh_token")], body={"refresh_token": "abc"}),
        FuzzRequest("auth", "POST", "/auth/v1/token", [("grant_type", "pkce")], body={"auth_code": "x"}),
        FuzzRequest("auth", "GET", "/auth/v1/user"),
        FuzzRequest("auth", "PUT", "/auth/v1/user", body={"data": {"theme": "dark"}}),
        FuzzRequest("auth", "PUT", "/auth/v1/user", body={"password": "another horse battery"}, creds="throwaway"),
        FuzzRequest("auth", "GET", "/auth/v1/settings", creds="publishable"),
        FuzzRequest("auth", "GET", "/auth/v1/health", creds="publishable"),
        FuzzRequest("auth", "GET", "/auth/v1/.well-known/jwks.json", creds="none"),
        FuzzRequest(
            "auth", "POST", "/auth/v1/logout", [("scope", rng.choice(["local", "global", "others"]))], creds="throwaway"
        ),
        FuzzRequest("auth", "POST", "/auth/v1/recover", body={"email": email}, creds="publishable"),
    ]


def storage(rng: random.Random, s: Subjects) -> list[FuzzRequest]:
    key = f"{s.uid}/fuzz-{rng.randrange(50)}.txt"
    long_key = f"{s.uid}/" + "k" * rng.choice([250, 300, 900]) + "/" + "v" * rng.choice([10, 260])
    # Up to and past S3's 1,024-byte key limit, in segments a file name can or cannot hold.
    deep_key = f"{s.uid}/" + "/".join(["d" * rng.choice([1, 199, 201])] * rng.choice([4, 30, 60]))
    obj, root = f"/storage/v1/object/{s.bucket}", "/storage/v1/object"
    text = {"content-type": b"text/plain"}
    metadata = base64.b64encode(b'{"source":"fuzz"}')
    ranges = [b"bytes=0-4", b"bytes=6-", b"bytes=-5", b"bytes=11-", b"bytes=50-60", b"bytes=3-1", b"bytes=x"]
    sort = {"column": rng.choice(["name", "created_at", "size", "x"]), "order": rng.choice(["asc", "desc", "up"])}
    form = {"cacheControl": "3600", "contentType": "text/plain", "metadata": '{"a":1}'}
    if rng.random() < 0.3:
        form[rng.choice(sorted(form))] = str(rng.choice(HOSTILE_VALUES))
    return [
        FuzzRequest("storage", "POST", f"{obj}/{key}", content=b"hello", headers={**text, "x-upsert": b"true"}),
        FuzzRequest(
            "storage",
            "PUT",
            f"{obj}/{key}",
            content=b"hello again",
            headers={**text, "cache-control": b"max-age=60", "x-metadata": metadata},
        ),
        FuzzRequest(
            "storage",
            "POST",
            f"{obj}/{key}",
            content=_multipart(form, b"multi"),
            headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}".encode(), "x-upsert": b"true"},
        ),
        FuzzRequest("storage", "POST", f"{obj}/{long_key}", content=b"long", headers={**text, "x-upsert": b"true"}),
        FuzzRequest("storage", "GET", f"{obj}/{long_key}"),
        FuzzRequest("storage", "PUT", f"{obj}/{deep_key}", content=b"deep", headers=text),
        FuzzRequest("storage", "GET", f"{obj}/{deep_key}"),
        FuzzRequest("storage", "GET", f"{obj}/{key}"),
        FuzzRequest("storage", "GET", f"{obj}/{s.existing_key}", headers={"range": rng.choice(ranges)}),
        FuzzRequest("storage", "GET", f"{obj}/{s.existing_key}", [("download", rng.choice(["", "ü.txt", 'a"b']))]),
        FuzzRequest("storage", "GET", f"{obj}/{s.bad_header_key}"),
        FuzzRequest("storage", "GET", f"{root}/authenticated/{s.bucket}/{s.existing_key}"),
        FuzzRequest("storage", "GET", f"{root}/public/{s.bucket}/{key}", creds="none"),
        FuzzRequest(
            "storage",
            "POST",
            f"{root}/list/{s.bucket}",
            body={"prefix": s.uid, "limit": 10, "offset": 0, "sortBy": sort, "search": "fuzz"},
        ),
        FuzzRequest("storage", "POST", f"{root}/sign/{s.bucket}/{s.existing_key}", body={"expiresIn": 60}),
        FuzzRequest("storage", "GET", f"{root}/sign/{s.bucket}/{key}", [("token", "a.b.c")]),
        FuzzRequest("storage", "DELETE", obj, body={"prefixes": [key, long_key]}),
        FuzzRequest("storage", "GET", "/storage/v1/bucket"),
        FuzzRequest("storage", "GET", f"/storage/v1/bucket/{s.bucket}"),
        FuzzRequest(
            "storage",
            "POST",
            "/storage/v1/bucket",
            body={
                "id": f"fz{rng.randrange(10**6)}",
                "name": "x",
                "public": False,
                "file_size_limit": rng.choice([1024, "1MB", "10 GB"]),
                "allowed_mime_types": ["text/plain", "image/*"],
            },
            creds=rng.choice(["secret", "user"]),
        ),
    ]


def realtime(rng: random.Random, s: Subjects) -> list[FuzzRequest]:
    topic = f"jobs:{s.uid}"
    return [
        FuzzRequest(
            "realtime",
            "POST",
            "/realtime/v1/api/broadcast",
            body={"messages": [{"topic": topic, "event": "ping", "payload": {"n": 1}, "private": True}]},
        ),
        FuzzRequest("realtime", "POST", f"/realtime/v1/api/broadcast/{topic}/events/ping", body={"payload": {"n": 1}}),
        FuzzRequest("realtime", "GET", "/realtime/v1/websocket", [("apikey", "x"), ("vsn", "1.0.0")]),
    ]


def edge(rng: random.Random, s: Subjects) -> list[FuzzRequest]:
    preflight = {"origin": b"null", "access-control-request-method": rng.choice([b"POST", b"BREW", b"\xff"])}
    return [
        FuzzRequest("edge", "GET", "/nope"),
        FuzzRequest("edge", "OPTIONS", "/rest/v1/jobs", headers=preflight, creds="none"),
        FuzzRequest(
            "edge",
            "OPTIONS",
            "/storage/v1/object/x",
            headers={**preflight, "access-control-request-headers": rng.choice([b"x-upsert", b"\xfc", b"a b"])},
            creds="none",
        ),
        FuzzRequest("edge", "BREW", "/rest/v1/jobs"),
        FuzzRequest("edge", "GET", "/health", creds="none"),
    ]
