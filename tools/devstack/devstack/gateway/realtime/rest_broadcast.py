"""Broadcast over HTTP, as Realtime's BroadcastController / BroadcastSingleController:

- ``POST /realtime/v1/api/broadcast`` ``{"messages": [{topic, event, payload, private?, id?}]}``
- ``POST /realtime/v1/api/broadcast/{topic}/events/{event}[?private=true]`` with a JSON or
  ``application/octet-stream`` body (realtime-js/py ``httpSend``).

Both answer 202. Bodies over ``Settings.max_body_bytes`` are 413, a batch of more than
``MAX_BATCH_MESSAGES`` messages 422. The token comes from ``Authorization: Bearer`` or else ``apikey``; a bad one is
401 ``{"message": "Unauthorized"}``. Private messages need write permission on the topic (RLS on
realtime.messages): the batch endpoint silently skips unauthorized topics, the single one
answers 403.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from devstack.gateway import bounded_json
from devstack.gateway.http import BodyTooLarge, read_limited
from devstack.gateway.realtime import authz, jwt_check
from devstack.gateway.realtime.protocol import UserBroadcast
from devstack.gateway.tokens import bearer

if TYPE_CHECKING:
    from devstack.gateway.realtime.service import RealtimeService

log = logging.getLogger(__name__)


MAX_BATCH_MESSAGES = 1000  # one request may fan out this many broadcasts at most


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def _too_large() -> JSONResponse:
    return _error(413, "Payload Too Large")


async def _relayed_json(raw: bytes) -> Any:
    # Broadcasts are relayed, never stored, so NUL may travel (as with hosted Realtime).
    return await bounded_json.parse_async(raw, allow_nul=True)


def _invalid(field: str, exc: bounded_json.JsonError) -> JSONResponse:
    """A changeset-style 422 (``{"errors": {field: [...]}}``) saying what was wrong."""
    text = "is invalid JSON" if exc.problem == "syntax" else f"is invalid: {exc.message()}"
    return JSONResponse({"errors": {field: [text]}}, status_code=422)


def _claims(service: RealtimeService, request: Request) -> dict[str, Any] | None:
    token = bearer(request.headers.get("authorization")) or request.headers.get("apikey")
    try:
        return jwt_check.check(token, service.keys)
    except jwt_check.RealtimeTokenError:
        return None


async def _may_write(service: RealtimeService, request: Request, claims: dict[str, Any], topic: str) -> bool:
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        perms = await authz.can_write(
            service.admin_pool, authz.AuthContext(topic, claims, headers), presence_enabled=False
        )
    except authz.PolicyError as exc:
        log.warning("realtime: RlsPolicyError on %s: %s", topic, exc)
        return False
    return perms.get("broadcast", False)


def _message_errors(message: Any) -> dict[str, list[str]]:
    if not isinstance(message, dict):
        return {"message": ["is invalid"]}
    errors: dict[str, list[str]] = {}
    for field in ("topic", "event"):
        if not isinstance(message.get(field), str) or not message[field]:
            errors[field] = ["can't be blank"]
    if not isinstance(message.get("payload"), dict):
        errors["payload"] = ["can't be blank"] if message.get("payload") is None else ["is invalid"]
    if "private" in message and not isinstance(message["private"], bool | None):
        errors["private"] = ["is invalid"]
    return errors


async def batch(service: RealtimeService, request: Request) -> Response:
    claims = _claims(service, request)
    if claims is None:
        return _error(401, "Unauthorized")
    try:
        body = await _relayed_json(await read_limited(request, service.ctx.settings.max_body_bytes))
    except BodyTooLarge:
        return _too_large()
    except bounded_json.JsonError as exc:
        return _invalid("body", exc)
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages:
        return JSONResponse({"errors": {"messages": ["can't be blank"]}}, status_code=422)
    if len(messages) > MAX_BATCH_MESSAGES:
        return JSONResponse(
            {"errors": {"messages": [f"should have at most {MAX_BATCH_MESSAGES} item(s)"]}}, status_code=422
        )
    errors = [_message_errors(m) for m in messages]
    if any(errors):
        return JSONResponse({"errors": {"messages": errors}}, status_code=422)
    allowed: dict[str, bool] = {}
    for m in messages:
        private = bool(m.get("private"))
        if private:
            if m["topic"] not in allowed:
                allowed[m["topic"]] = await _may_write(service, request, claims, m["topic"])
            if not allowed[m["topic"]]:
                continue
        payload: dict[str, Any] = {"payload": m["payload"], "event": m["event"], "type": "broadcast"}
        if m.get("id") is not None:
            payload["meta"] = {"id": m["id"]}
        service.hub.broadcast(m["topic"], private, payload)
    return Response(status_code=202)


async def single(service: RealtimeService, request: Request) -> Response:
    claims = _claims(service, request)
    if claims is None:
        return _error(401, "Unauthorized")
    topic, event = request.path_params["topic"], request.path_params["event"]
    private = request.query_params.get("private") == "true"
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        raw = await read_limited(request, service.ctx.settings.max_body_bytes)
    except BodyTooLarge:
        return _too_large()
    if content_type == "application/octet-stream":
        bc = UserBroadcast(event=event, data=raw, is_json=False)
    elif content_type in ("application/json", ""):
        try:
            payload = await _relayed_json(raw) if raw else None
        except bounded_json.JsonError as exc:
            return _invalid("payload", exc)
        if payload is None:
            return JSONResponse({"errors": {"payload": ["can't be blank"]}}, status_code=422)
        bc = UserBroadcast(event=event, data=json.dumps(payload).encode(), is_json=True)
    else:
        return _error(415, "Unsupported Media Type")
    if private and not await _may_write(service, request, claims, topic):
        return _error(403, "Unauthorized")
    service.hub.broadcast(topic, private, bc)
    return Response(status_code=202)
